using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using RetinaSharp.Modeling;

namespace RetinaSharp.Tests.Modeling;

/// <summary>
/// DetectionTransform.ResizedSize against torchvision 0.14's resize for every image size up to 2000x2000
/// (Fixtures/model/resize_sizes.json from scripts/make_resize_fixtures.py: a hash of the whole table, one per row,
/// and a sample of the sizes where torchvision's float32 scale gives another size than the float64 formula).
/// </summary>
public class ResizeSizeTests
{
    private static JsonElement Pairs()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "model", "resize_sizes.json");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("pairs");
    }

    public static TheoryData<int, int> SizePairs() => new() { { 800, 1333 }, { 640, 1333 }, { 128, 128 } };

    [Theory]
    [MemberData(nameof(SizePairs))]
    public void Every_size_up_to_2000_matches_torchvision(int minSize, int maxSize)
    {
        var pair = Pairs().EnumerateArray().Single(p => p.GetProperty("min_size").GetInt32() == minSize && p.GetProperty("max_size").GetInt32() == maxSize);
        int n = pair.GetProperty("max_side").GetInt32();
        Assert.Equal(2000, n);
        Assert.Equal((long)n * n, pair.GetProperty("count").GetInt64());
        var rowHashes = pair.GetProperty("row_hashes").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(n, rowHashes.Length);

        using var total = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var row = new byte[n * 8];
        var badRows = new List<int>();
        long differsFromFloat64 = 0;
        for (int h = 1; h <= n; h++)
        {
            for (int w = 1; w <= n; w++)
            {
                var (oh, ow) = DetectionTransform.ResizedSize(h, w, minSize, maxSize);
                BinaryPrimitives.WriteInt32LittleEndian(row.AsSpan((w - 1) * 8), checked((int)oh));
                BinaryPrimitives.WriteInt32LittleEndian(row.AsSpan((w - 1) * 8 + 4), checked((int)ow));
                double s = Math.Min((double)minSize / Math.Min(h, w), (double)maxSize / Math.Max(h, w));
                if (Math.Max(1L, (long)Math.Floor(h * s)) != oh || Math.Max(1L, (long)Math.Floor(w * s)) != ow) differsFromFloat64++;
            }
            total.AppendData(row);
            if (Convert.ToHexStringLower(SHA256.HashData(row))[..16] != rowHashes[h - 1]) badRows.Add(h);
        }
        Assert.True(badRows.Count == 0, $"{badRows.Count} rows differ from torchvision, first heights: {string.Join(", ", badRows.Take(10))}");
        Assert.Equal(pair.GetProperty("sha256").GetString(), Convert.ToHexStringLower(total.GetHashAndReset()));
        // The float32 arithmetic matters for about half of all sizes: they are not the float64 formula's.
        Assert.Equal(pair.GetProperty("differs_count").GetInt64(), differsFromFloat64);
        Assert.InRange(differsFromFloat64, n * (long)n / 3, n * (long)n * 2 / 3);
    }

    [Fact]
    public void Sampled_sizes_where_float32_and_float64_disagree_are_torchvisions()
    {
        foreach (var pair in Pairs().EnumerateArray())
        {
            int minSize = pair.GetProperty("min_size").GetInt32(), maxSize = pair.GetProperty("max_size").GetInt32();
            var sample = pair.GetProperty("differs_sample").EnumerateArray().ToList();
            Assert.Equal(200, sample.Count);
            foreach (var e in sample)
            {
                int h = e[0].GetInt32(), w = e[1].GetInt32();
                Assert.Equal((e[2].GetInt64(), e[3].GetInt64()), DetectionTransform.ResizedSize(h, w, minSize, maxSize));
                double s = Math.Min((double)minSize / Math.Min(h, w), (double)maxSize / Math.Max(h, w));
                Assert.NotEqual((Math.Max(1L, (long)Math.Floor(h * s)), Math.Max(1L, (long)Math.Floor(w * s))), DetectionTransform.ResizedSize(h, w, minSize, maxSize));
            }
        }
    }

    [Theory]
    [InlineData(480, 640, 800, 1066)]   // 800/480 rounds up in float32: the exact size
    [InlineData(427, 640, 799, 1199)]   // COCO's most common size after 640x480: one pixel short of 800 (float64 gives 800)
    [InlineData(375, 500, 799, 1066)]
    [InlineData(1080, 1920, 749, 1333)] // the long side meets max_size
    [InlineData(800, 1200, 800, 1200)]  // scale exactly 1
    public void Common_photo_sizes_match_torchvision(int h, int w, long expectedH, long expectedW)
    {
        // Values printed by torchvision 0.14's _resize_image_and_masks(torch.zeros(1, h, w), 800., 1333.).
        var transform = new DetectionTransform(new RetinaNetOptions(1));
        Assert.Equal((expectedH, expectedW), transform.ResizedSize(h, w));
    }
}
