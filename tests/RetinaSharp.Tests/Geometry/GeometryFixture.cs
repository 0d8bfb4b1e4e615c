using System.Text.Json;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Geometry;

/// <summary>Reads the JSON fixtures written by scripts/make_geometry_fixtures.py (torchvision 0.14).</summary>
internal static class GeometryFixture
{
    public static JsonElement Load(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "geometry", name);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    public static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();

    public static long[] Longs(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt64()).ToArray();

    /// <summary>A float32 tensor of shape (-1, columns) from a flat JSON array.</summary>
    public static Tensor Matrix(JsonElement e, long columns) => tensor(Floats(e)).view(-1, columns);

    public static void AssertClose(float[] expected, Tensor actual, double rtol = 1e-6, double atol = 1e-5)
    {
        float[] a = actual.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
        {
            double tol = atol + rtol * Math.Abs(expected[i]);
            if (!(Math.Abs(expected[i] - a[i]) <= tol) && !(float.IsNaN(expected[i]) && float.IsNaN(a[i])))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {a[i]:R}");
        }
    }

    public static void AssertExact(float[] expected, Tensor actual) => AssertClose(expected, actual, 0, 0);

    public static long[] ToLongs(Tensor t) => t.cpu().to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
    public static float[] ToFloats(Tensor t) => t.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
}
