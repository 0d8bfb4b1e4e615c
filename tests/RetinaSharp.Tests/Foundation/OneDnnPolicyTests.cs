// The oneDNN decision of TorchRuntime from injected machine facts: CPUID tables of an Intel Xeon (leaf 4 lists its
// caches), an AMD EPYC that lists its caches in leaf 0x8000001D, and the AMD EPYC VM whose leaf 0x8000001D is empty
// (the machine where oneDNN's brgemm convolutions divide by zero).
using RetinaSharp.Runtime;

namespace RetinaSharp.Tests.Foundation;

public class OneDnnPolicyTests
{
    // Register values of CPUID leaf 0 spell the vendor in EBX, EDX, ECX.
    private static (uint, uint, uint) Vendor(string v)
    {
        uint R(int o) => (uint)(v[o] | v[o + 1] << 8 | v[o + 2] << 16 | v[o + 3] << 24);
        return (R(0), R(8), R(4));
    }

    // EAX: type in [4:0], level in [7:5]; EBX: ways-1 [31:22], partitions-1 [21:12], line-1 [11:0]; ECX: sets-1.
    private static (uint, uint, uint, uint) Cache(int type, int level, int ways, int line, int sets) =>
        ((uint)(type | level << 5), (uint)((ways - 1) << 22 | (line - 1)), (uint)(sets - 1), 0);

    private static CpuCacheFacts.CpuidFunction Table(string vendor, uint maxBasic, uint maxExt, uint cacheLeaf, params (uint, uint, uint, uint)[] caches) =>
        (leaf, sub) =>
        {
            if (leaf == 0) { var (b, c, d) = Vendor(vendor); return (maxBasic, b, c, d); }
            if (leaf == 0x8000_0000) return (maxExt, 0, 0, 0);
            if (leaf == cacheLeaf) return sub < caches.Length ? caches[sub] : (0, 0, 0, 0);
            return (0, 0, 0, 0);
        };

    [Fact]
    public void Intel_leaf_4_caches_are_decoded_and_keep_oneDNN_everywhere()
    {
        // Xeon: L1d 48 KiB (12 ways x 64 B x 64 sets), L1i, L2 2 MiB (16 x 64 x 2048), L3 105 MiB (15 x 64 x 114688).
        var facts = CpuCacheFacts.FromCpuid(Table("GenuineIntel", 0x1F, 0x8000_0008, 4,
            Cache(1, 1, 12, 64, 64), Cache(2, 1, 8, 64, 64), Cache(3, 2, 16, 64, 2048), Cache(3, 3, 15, 64, 114688)), 4);
        Assert.Equal("GenuineIntel", facts.Vendor);
        Assert.Equal(4u, facts.CacheLeaf);
        Assert.Equal([new CpuCache(1, "data", 48 * 1024), new CpuCache(2, "unified", 2 * 1024 * 1024), new CpuCache(3, "unified", 15L * 64 * 114688)], facts.Caches);
        var d = OneDnnPolicy.Decide(facts, OneDnnSetting.Auto);
        Assert.Equal(OneDnnMode.Full, d.Mode);
        Assert.False(d.Forced);
        Assert.True(d.ChannelsLast);
    }

    [Fact]
    public void Amd_with_leaf_8000001D_caches_keeps_oneDNN_everywhere()
    {
        var facts = CpuCacheFacts.FromCpuid(Table("AuthenticAMD", 0x10, 0x8000_0021, 0x8000_001D,
            Cache(1, 1, 12, 64, 64), Cache(3, 2, 16, 64, 1024), Cache(3, 3, 16, 64, 32768)), 0);
        Assert.Equal(0x8000_001Du, facts.CacheLeaf);
        Assert.Equal(3, facts.Caches.Count);
        Assert.Equal(1024L * 1024, facts.Caches[1].SizeBytes);
        Assert.Equal(OneDnnMode.Full, OneDnnPolicy.Decide(facts, OneDnnSetting.Auto).Mode);
    }

    [Fact]
    public void Amd_vm_with_an_empty_cache_leaf_runs_oneDNN_forward_only()
    {
        // The Zen 5 VM of the issue: leaf 0x8000001D answers all zeros (and Intel's leaf 4, which AMD does not use, too).
        var facts = CpuCacheFacts.FromCpuid(Table("AuthenticAMD", 0x0D, 0x8000_0021, 0x8000_001D), 0);
        Assert.Empty(facts.Caches);
        Assert.False(facts.CpuidReportsCaches);
        var d = OneDnnPolicy.Decide(facts, OneDnnSetting.Auto);
        Assert.Equal(OneDnnMode.ForwardOnly, d.Mode);
        Assert.False(d.ChannelsLast);
        Assert.Contains("no cache sizes", d.Reason);
        Assert.Contains("0x8000001D lists no caches", d.Reason);
        Assert.Contains("RETINA_ONEDNN=full", TorchRuntime.Describe(d));
    }

    [Fact]
    public void An_amd_cpu_without_the_extended_leaf_counts_as_reporting_no_caches()
    {
        var facts = CpuCacheFacts.FromCpuid(Table("AuthenticAMD", 0x0D, 0x8000_0008, 0x8000_001D, Cache(1, 1, 8, 64, 64)), 0);
        Assert.Equal(0u, facts.CacheLeaf);
        Assert.Equal(OneDnnMode.ForwardOnly, OneDnnPolicy.Decide(facts, OneDnnSetting.Auto).Mode);
    }

    [Fact]
    public void Non_x86_machines_keep_libtorch_defaults()
    {
        var facts = new CpuCacheFacts("", 0, [], 0);
        Assert.Equal(OneDnnMode.Full, OneDnnPolicy.Decide(facts, OneDnnSetting.Auto).Mode);
    }

    [Theory]
    [InlineData("full", OneDnnMode.Full)]
    [InlineData("FORWARD", OneDnnMode.ForwardOnly)]
    [InlineData(" off ", OneDnnMode.Off)]
    public void A_forced_setting_wins_over_the_machine_facts(string value, OneDnnMode mode)
    {
        var empty = CpuCacheFacts.FromCpuid(Table("AuthenticAMD", 0x0D, 0x8000_0021, 0x8000_001D), 0);
        var d = OneDnnPolicy.Decide(empty, OneDnnPolicy.Parse(value));
        Assert.Equal(mode, d.Mode);
        Assert.True(d.Forced);
        Assert.Equal(mode == OneDnnMode.Full, d.ChannelsLast);
    }

    [Fact]
    public void Unknown_settings_are_refused_naming_the_variable()
    {
        var e = Assert.Throws<ArgumentException>(() => OneDnnPolicy.Parse("fast"));
        Assert.Equal("RETINA_ONEDNN = 'fast': expected auto, full, forward or off.", e.Message);
        Assert.Equal(OneDnnSetting.Auto, OneDnnPolicy.Parse(null));
        Assert.Equal(OneDnnSetting.Auto, OneDnnPolicy.Parse(""));
    }

    [Fact]
    public void This_machine_is_read_and_decided_consistently()
    {
        // Whatever this CPU is, the decision in force follows from what it reports (no override in the test run).
        var facts = CpuCacheFacts.Read();
        Assert.True(facts.IsX86 == System.Runtime.Intrinsics.X86.X86Base.IsSupported);
        var expected = OneDnnPolicy.Decide(facts, OneDnnPolicy.Parse(Environment.GetEnvironmentVariable(TorchRuntime.OneDnnVariable)));
        Assert.Equal(expected.Mode, TorchRuntime.OneDnn.Mode);
        if (OperatingSystem.IsLinux() && Directory.Exists("/sys/devices/system/cpu/cpu0/cache"))
            Assert.Equal(Directory.GetDirectories("/sys/devices/system/cpu/cpu0/cache", "index*").Length, facts.SysfsCacheEntries);
        else
            Assert.Equal(0, facts.SysfsCacheEntries);
    }
}
