using RetinaSharp.Modeling;
using TorchSharp;
using RetinaSharp.Tests.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Foundation;

[Collection(TorchRngCollection.Name)]
public class ComputeDeviceTests
{
    [Theory]
    [InlineData("cpu", DeviceType.CPU, -1)]
    [InlineData("CPU", DeviceType.CPU, -1)]
    [InlineData("cuda", DeviceType.CUDA, 0)]
    [InlineData(" cuda:0 ", DeviceType.CUDA, 0)]
    [InlineData("cuda:3", DeviceType.CUDA, 3)]
    public void Device_strings_parse_as_torch_device_strings(string text, DeviceType type, int index)
    {
        Assert.Equal((type, index), ComputeDevice.ParseSpec(text));
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    [InlineData("cuda0")]
    [InlineData("")]
    public void Other_strings_are_refused_naming_the_option_and_the_forms(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => ComputeDevice.ParseSpec(text, "--device"));
        Assert.Equal($"--device '{text}': expected cpu, cuda or cuda:N (N = 0, 1, ...).", e.Message);
    }

    [Fact]
    public void Cuda_with_the_cpu_only_libtorch_says_which_package_to_reference_and_how()
    {
        Assert.Equal(DeviceType.CPU, ComputeDevice.Resolve("cpu").type);
        var e = Assert.Throws<ArgumentException>(() => ComputeDevice.Resolve("cuda"));
        Assert.StartsWith("--device 'cuda': this process runs the CPU-only libtorch", e.Message);
        Assert.Contains("<PackageReference Include=\"libtorch-cuda-12.8-linux-x64\" Version=\"2.10.0\" />", e.Message);
        Assert.Contains("<PackageReference Include=\"libtorch-cpu-linux-x64\" Version=\"2.10.0\" ExcludeAssets=\"all\" />", e.Message);
    }

    [Fact]
    public void Only_devices_other_than_the_cpu_get_fallback_notices()
    {
        Assert.Empty(ComputeDevice.Fallbacks(CPU));
        var notes = ComputeDevice.Fallbacks(new Device(DeviceType.CUDA, 1));
        Assert.Contains(notes, n => n.StartsWith("focal loss: the fused CPU kernel does not run on cuda:1", StringComparison.Ordinal));
    }

    [Fact]
    public void RetinaNet_moves_cpu_images_to_its_device_and_losses_and_detections_stay_there()
    {
        using var scope = NewDisposeScope();
        manual_seed(0);
        using var model = new RetinaNet(new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64, FpnChannels = 16 });
        model.to(ComputeDevice.Resolve("cpu"));
        Assert.Equal(DeviceType.CPU, model.Device.type);
        var image = rand(3, 48, 64);
        var target = new DetectionTarget(tensor(new float[] { 4, 4, 30, 40 }).view(1, 4), tensor(new long[] { 1 }));
        model.train();
        var losses = model.ComputeLosses([image], [target]);
        Assert.Equal(DeviceType.CPU, losses.Classification.device_type);
        Assert.True(losses.Total.item<float>() > 0);
        model.eval();
        var d = model.Detect([image])[0];
        Assert.Equal(DeviceType.CPU, d.Boxes.device_type);
    }
}
