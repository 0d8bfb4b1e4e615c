using static TorchSharp.torch;

namespace RetinaSharp.Tests.Foundation;

public class TorchLoadsTests
{
    [Fact]
    public void A_tensor_can_be_created_and_computed_on()
    {
        using var scope = NewDisposeScope();
        var t = tensor(new float[] { 1f, 2f, 3f });
        Assert.Equal(6f, t.sum().item<float>());
        Assert.StartsWith("2.10", RetinaSharp.TorchRuntime.Version);
    }
}
