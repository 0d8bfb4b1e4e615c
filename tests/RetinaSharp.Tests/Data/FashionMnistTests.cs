using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.IO;

namespace RetinaSharp.Tests.Data;

public class FashionMnistTests
{
    // Shared by the tests of this class: reading the 4.4 MB of gz files once.
    private static readonly Lazy<FashionMnistSet> Set = new(() => FashionMnistSet.Load());

    [Fact]
    public void Idx_reader_reads_the_committed_test_split()
    {
        var set = Set.Value;
        Assert.Equal(10000, set.Count);
        Assert.Equal(28 * 28, set.Image(0).Length);
        // Values read with /usr/bin/python3 (gzip + struct) from the same files: the first label is 9 (Ankle boot),
        // the first image's pixels sum to 33456, each class has 1000 images.
        Assert.Equal(9, set.Label(0));
        Assert.Equal(new[] { 9, 2, 1, 1, 6, 1, 4, 6, 5, 7 }, Enumerable.Range(0, 10).Select(set.Label));
        int sum = 0;
        foreach (byte b in set.Image(0)) sum += b;
        Assert.Equal(33456, sum);
        Assert.All(set.Labels.GroupBy(l => l), g => Assert.Equal(1000, g.Count()));
        Assert.Equal(10, set.Labels.Distinct().Count());
        Assert.Equal("Ankle boot", FashionMnistSet.ClassNames[9]);
    }

    [Fact]
    public void Idx_reader_validates_magic_number_and_sizes()
    {
        byte[] good = { 0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6 };
        var a = IdxFile.Parse("x.idx", good);
        Assert.Equal(new[] { 2, 3 }, a.Dimensions);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6 }, a.Data);

        var e = Assert.Throws<DataFormatException>(() => IdxFile.Parse("x.idx", new byte[] { 1, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3 }));
        Assert.Equal(("x.idx", "magic"), (e.File, e.Field));
        e = Assert.Throws<DataFormatException>(() => IdxFile.Parse("x.idx", new byte[] { 0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0 }));
        Assert.Contains("0x0D", e.Message); // float data is not supported
        e = Assert.Throws<DataFormatException>(() => IdxFile.Parse("x.idx", good, expectedDimensions: 3));
        Assert.Contains("2 dimensions, expected 3", e.Message);
        e = Assert.Throws<DataFormatException>(() => IdxFile.Parse("x.idx", good[..^1]));
        Assert.Contains("truncated", e.Message);
        e = Assert.Throws<DataFormatException>(() => IdxFile.Parse("x.idx", good.Append((byte)0).ToArray()));
        Assert.Contains("trailing", e.Message);
    }

    [Fact]
    public void Idx_reader_rejects_a_corrupt_gz_file()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["x.gz"], new byte[] { 0x1f, 0x8b, 8, 0, 1, 2, 3 });
        var e = Assert.Throws<DataFormatException>(() => IdxFile.Read(dir["x.gz"]));
        Assert.Contains("x.gz", e.Message);
    }

    [Fact]
    public void Train_and_validation_glyphs_are_disjoint_and_cover_the_set()
    {
        var (train, val) = FashionScenes.SplitGlyphs(10000, seed: 3);
        Assert.Equal(8000, train.Length);
        Assert.Equal(2000, val.Length);
        Assert.Empty(train.Intersect(val));
        Assert.Equal(Enumerable.Range(0, 10000), train.Concat(val).Order());

        // Scenes only use glyphs of their own split.
        var options = new FashionScenesOptions("unused", Size: 96);
        var used = Enumerable.Range(0, 30).SelectMany(i => FashionScenes.Compose(Set.Value, val, options, new Random(i)).Objects).Select(o => o.GlyphIndex).ToHashSet();
        Assert.NotEmpty(used);
        Assert.Subset(val.ToHashSet(), used);
    }

    [Fact]
    public void Each_box_lies_in_the_image_and_is_tight_around_the_drawn_glyph()
    {
        // Single objects on flat backgrounds: the pixels that differ from the background are exactly the glyph's.
        var (train, _) = FashionScenes.SplitGlyphs(Set.Value.Count, 0);
        var options = new FashionScenesOptions("unused", Size: 80, MinObjects: 1, MaxObjects: 1, EmptyFraction: 0, Backgrounds: SceneBackgrounds.Flat);
        for (int i = 0; i < 25; i++)
        {
            var (image, objects) = FashionScenes.Compose(Set.Value, train, options, new Random(100 + i));
            var o = Assert.Single(objects);
            Assert.True(o.X1 >= 0 && o.Y1 >= 0 && o.X2 <= 80 && o.Y2 <= 80 && o.X2 > o.X1 && o.Y2 > o.Y1, $"box {o} outside 80x80");
            Assert.Equal(Set.Value.Label(o.GlyphIndex), o.Label);
            // The background colour: the most common pixel.
            var px = image.Pixels;
            var bg = Enumerable.Range(0, 80 * 80).GroupBy(p => (px[3 * p], px[3 * p + 1], px[3 * p + 2])).MaxBy(g => g.Count())!.Key;
            int x1 = int.MaxValue, y1 = int.MaxValue, x2 = -1, y2 = -1;
            for (int y = 0; y < 80; y++)
                for (int x = 0; x < 80; x++)
                {
                    int p = 3 * (y * 80 + x);
                    if ((px[p], px[p + 1], px[p + 2]) == bg) continue;
                    x1 = Math.Min(x1, x); y1 = Math.Min(y1, y); x2 = Math.Max(x2, x + 1); y2 = Math.Max(y2, y + 1);
                }
            Assert.Equal((o.X1, o.Y1, o.X2, o.Y2), (x1, y1, x2, y2));
            Assert.True(o.X2 - o.X1 >= 8 || o.Y2 - o.Y1 >= 8, "glyph at least 28 px in one direction (scale >= 1)");
        }
    }

    [Fact]
    public void Scenes_have_1_to_8_objects_with_bounded_overlap_and_some_are_empty()
    {
        var (train, _) = FashionScenes.SplitGlyphs(Set.Value.Count, 0);
        var options = new FashionScenesOptions("unused", Size: 128, EmptyFraction: 0.1);
        var counts = new List<int>();
        for (int i = 0; i < 200; i++)
        {
            var (_, objects) = FashionScenes.Compose(Set.Value, train, options, new Random(i));
            counts.Add(objects.Count);
            foreach (var a in objects)
                foreach (var b in objects.Where(b => !ReferenceEquals(a, b)))
                {
                    int iw = Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1), ih = Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1);
                    double inter = Math.Max(0, iw) * (double)Math.Max(0, ih);
                    double smaller = Math.Min((a.X2 - a.X1) * (a.Y2 - a.Y1), (b.X2 - b.X1) * (b.Y2 - b.Y1));
                    Assert.True(inter / smaller <= 0.25 + 1e-12, $"overlap {inter / smaller}");
                }
        }
        Assert.InRange(counts.Max(), 6, 8);
        Assert.InRange(counts.Count(c => c == 0), 5, 40); // about 10% negatives
        Assert.True(counts.Average() > 2.5, $"average {counts.Average()} objects");
    }

    [Fact]
    public void Build_writes_valid_coco_and_the_same_seed_gives_the_same_files()
    {
        using var dir = new TempDir();
        var a = FashionScenes.Build(new FashionScenesOptions(dir["a"], TrainImages: 12, ValImages: 5, Size: 64, Seed: 7));
        var b = FashionScenes.Build(new FashionScenesOptions(dir["b"], TrainImages: 12, ValImages: 5, Size: 64, Seed: 7));
        var c = FashionScenes.Build(new FashionScenesOptions(dir["c"], TrainImages: 12, ValImages: 5, Size: 64, Seed: 8));
        var files = Directory.EnumerateFiles(dir["a"], "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir["a"], f)).Order().ToList();
        Assert.Equal(12 + 5 + 3, files.Count); // PNGs, two json files, scenes.json
        foreach (var f in files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir["a"], f)), File.ReadAllBytes(Path.Combine(dir["b"], f)));
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(dir["a"], "train", "000001.png")), File.ReadAllBytes(Path.Combine(dir["c"], "train", "000001.png")));

        var train = DetectionDataset.Load(a.TrainJson);
        var val = DetectionDataset.Load(a.ValJson);
        Assert.Equal(12, train.Images.Count);
        Assert.Equal(5, val.Images.Count);
        Assert.Equal(a.TrainBoxes, train.BoxCount);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), train.Categories.Categories.Select(k => k.Id));
        Assert.Equal("T-shirt/top", train.Categories.Name(0));
        Assert.Equal(dir["a/train/000001.png"], train.Images[0].FilePath);
        Assert.Empty(DatasetCheck.Check(train));
        Assert.Empty(DatasetCheck.Check(val));
        Assert.True(FashionScenes.IsBuilt(new FashionScenesOptions(dir["a"], TrainImages: 12, ValImages: 5, Size: 64, Seed: 7)));
        Assert.False(FashionScenes.IsBuilt(new FashionScenesOptions(dir["a"], TrainImages: 12, ValImages: 5, Size: 64, Seed: 8)));
    }

    [Fact]
    public void Bad_options_are_clear_errors()
    {
        using var dir = new TempDir();
        var e = Assert.ThrowsAny<ArgumentException>(() => FashionScenes.Build(new FashionScenesOptions(dir["x"], Size: 32)));
        Assert.Contains("--size", e.Message);
        Assert.Contains("32", e.Message);
        Assert.Contains("--train", Assert.ThrowsAny<ArgumentException>(() => FashionScenes.Build(new FashionScenesOptions(dir["x"], TrainImages: 0))).Message);
        Assert.Contains("--val", Assert.ThrowsAny<ArgumentException>(() => FashionScenes.Build(new FashionScenesOptions(dir["x"], ValImages: 0))).Message);
        File.WriteAllText(dir["file"], "x");
        var io = Assert.Throws<IOException>(() => FashionScenes.Build(new FashionScenesOptions(dir["file"], 2, 2)));
        Assert.Contains(dir["file"], io.Message);
        io = Assert.Throws<IOException>(() => FashionScenes.Build(new FashionScenesOptions(Path.Combine(dir["file"], "sub"), 2, 2)));
        Assert.Contains(dir["file"], io.Message);
    }
}
