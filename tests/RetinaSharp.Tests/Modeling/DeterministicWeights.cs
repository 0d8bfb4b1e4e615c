// Reproduces, bit for bit, the weight and image formula of scripts/make_model_fixtures.py (see its docstring), so
// that the parity tests rebuild torchvision's fixture model without committed weights.
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

internal static class DeterministicWeights
{
    public static uint Fnv1a(string key)
    {
        uint h = 0x811C9DC5;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(key)) { h ^= b; h *= 0x01000193; }
        return h;
    }

    /// <summary>u_i in [-0.5, 0.5) for i = 0..n-1, as float64.</summary>
    public static double U(uint h, long i)
    {
        uint x = unchecked((uint)((ulong)i * 2654435761UL) + h);
        x ^= x >> 16;
        x = unchecked(x * 0x45D9F3Bu);
        x ^= x >> 16;
        return x / 4294967296.0 - 0.5;
    }

    public static (double Scale, double Offset) KindScaleOffset(string key, long[] shape)
    {
        if (key.EndsWith("running_var", StringComparison.Ordinal)) return (0.5, 1.0);
        if (key.EndsWith("running_mean", StringComparison.Ordinal)) return (0.2, 0.0);
        if (shape.Length == 4)
        {
            long fanIn = shape[1] * shape[2] * shape[3];
            double gain = 1.0;
            if (key.StartsWith("backbone.fpn.", StringComparison.Ordinal)) gain = 0.2;
            else if (key.EndsWith("bbox_reg.weight", StringComparison.Ordinal)) gain = 0.2;
            else if (key.EndsWith("cls_logits.weight", StringComparison.Ordinal)) gain = 0.5;
            return (Math.Sqrt(24.0 / fanIn) * gain, 0.0);
        }
        if (key.EndsWith("cls_logits.bias", StringComparison.Ordinal)) return (1.0, -4.0);
        if (key.EndsWith("bias", StringComparison.Ordinal)) return (0.2, 0.0);
        if (key.EndsWith("weight", StringComparison.Ordinal)) return (0.4, 0.8);
        throw new ArgumentException(key);
    }

    public static float[] Values(string key, long[] shape, double scale, double offset)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        uint h = Fnv1a(key);
        var v = new float[n];
        for (long i = 0; i < n; i++) v[i] = (float)(U(h, i) * scale + offset);
        return v;
    }

    public static void Fill(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var (key, t) in model.state_dict())
        {
            var (scale, offset) = KindScaleOffset(key, t.shape);
            using var src = tensor(Values(key, t.shape, scale, offset)).reshape(t.shape);
            t.copy_(src);
        }
    }

    public static Tensor Image(int index, long c, long h, long w) =>
        tensor(Values($"image{index}", [c, h, w], 1.0, 0.5)).reshape(c, h, w);
}
