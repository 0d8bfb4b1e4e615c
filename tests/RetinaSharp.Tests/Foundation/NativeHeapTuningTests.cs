// The heap tuning decision (NativeHeap.TuneForTensors): applied by default on Linux, left to glibc when the user asks
// (RETINA_HEAP=glibc) or has set glibc's own malloc settings, refused with the variable named for an unknown value; and
// TorchRuntime's start-up really makes the decision the environment asks for.
using RetinaSharp.Training;

namespace RetinaSharp.Tests.Foundation;

public class NativeHeapTuningTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Applies_the_tuned_thresholds_by_default_on_linux()
    {
        var d = HeapTuning.Decide(Env(), linux: true);
        Assert.True(d.Applied);
        Assert.Equal("mmap threshold 32 MiB, trim threshold 256 MiB", d.Reason);
        Assert.Equal(32 * 1024 * 1024, NativeHeap.TunedMmapThreshold);
        Assert.Equal(256 * 1024 * 1024, NativeHeap.TunedTrimThreshold);
        Assert.True(HeapTuning.Decide(Env(("RETINA_HEAP", " Tuned ")), linux: true).Applied);
        // A GLIBC_TUNABLES without malloc entries is not a malloc setting.
        Assert.True(HeapTuning.Decide(Env(("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F")), linux: true).Applied);
    }

    [Theory]
    [InlineData("RETINA_HEAP", "glibc", "RETINA_HEAP=glibc")]
    [InlineData("GLIBC_TUNABLES", "glibc.cpu.x86_ibt=on:glibc.malloc.arena_max=2", "GLIBC_TUNABLES sets malloc")]
    [InlineData("MALLOC_TRIM_THRESHOLD_", "1000", "MALLOC_TRIM_THRESHOLD_ is set")]
    [InlineData("MALLOC_MMAP_THRESHOLD_", "1000", "MALLOC_MMAP_THRESHOLD_ is set")]
    [InlineData("MALLOC_TOP_PAD_", "0", "MALLOC_TOP_PAD_ is set")]
    [InlineData("MALLOC_MMAP_MAX_", "0", "MALLOC_MMAP_MAX_ is set")]
    public void Leaves_glibc_alone_when_the_user_chose(string name, string value, string reason)
    {
        var d = HeapTuning.Decide(Env((name, value)), linux: true);
        Assert.False(d.Applied);
        Assert.Equal(reason, d.Reason);
    }

    [Fact]
    public void Is_not_applied_off_linux()
    {
        var d = HeapTuning.Decide(Env(), linux: false);
        Assert.Equal(new HeapTuning(false, "not Linux"), d);
    }

    [Fact]
    public void Refuses_an_unknown_setting_naming_the_variable()
    {
        var e = Assert.Throws<ArgumentException>(() => HeapTuning.Decide(Env(("RETINA_HEAP", "fast")), linux: true));
        Assert.Contains("RETINA_HEAP='fast'", e.Message);
        Assert.Contains("tuned, glibc", e.Message);
    }

    [Fact]
    public void Torch_runtime_start_up_makes_the_environment_s_decision()
    {
        TorchRuntime.Initialize();
        var expected = HeapTuning.Decide(Environment.GetEnvironmentVariable, OperatingSystem.IsLinux());
        var made = NativeHeap.Tuning;
        Assert.NotNull(made);
        // On glibc (every machine this suite runs on) mallopt accepts both values, so what was made is what was decided.
        Assert.Equal(expected, made);
        Assert.Same(made, NativeHeap.TuneForTensors());
    }
}
