// Detection scenes composed from Fashion-MNIST glyphs: a real-image detection set that trains in minutes on a
// CPU. Each scene pastes 1-8 glyphs (scaled 1x-4x, bilinear) on a flat, gradient, noise or texture background,
// the glyph's intensity blending its own colour over the background; the box of an object is tight around the
// glyph's non-zero pixels after scaling. Train and validation draw from disjoint sets of glyphs. Written as a
// COCO dataset through CocoJson, so everything downstream uses the ordinary COCO path.
using System.Text.Json;
using RetinaSharp.IO;

namespace RetinaSharp.Data.FashionMnist;

/// <summary>A generated Fashion-MNIST detection dataset.</summary>
/// <param name="OutputFolder">The dataset folder (absolute).</param>
/// <param name="TrainJson">instances_train.json (COCO; file names relative to the folder).</param>
/// <param name="ValJson">instances_val.json.</param>
/// <param name="TrainImages">Number of training scenes.</param>
/// <param name="ValImages">Number of validation scenes.</param>
/// <param name="TrainBoxes">Number of training boxes.</param>
/// <param name="ValBoxes">Number of validation boxes.</param>
public sealed record FashionScenesResult(string OutputFolder, string TrainJson, string ValJson, int TrainImages, int ValImages, int TrainBoxes, int ValBoxes);

/// <summary>One object placed in a scene.</summary>
/// <param name="GlyphIndex">Index of the Fashion-MNIST image used.</param>
/// <param name="Label">Its class 0..9 (category id = label + 1).</param>
/// <param name="X1">Tight box left edge, pixels.</param>
/// <param name="Y1">Tight box top edge, pixels.</param>
/// <param name="X2">Tight box right edge (exclusive), pixels.</param>
/// <param name="Y2">Tight box bottom edge (exclusive), pixels.</param>
public sealed record SceneObject(int GlyphIndex, int Label, int X1, int Y1, int X2, int Y2);

/// <summary>Builds Fashion-MNIST detection scenes (<c>retina data fashion-scenes</c>).</summary>
public static class FashionScenes
{
    /// <summary>Glyph values below this (out of 255) are cleared after scaling, so faint interpolation tails do not widen boxes.</summary>
    public const byte GlyphThreshold = 8;

    /// <summary>Fraction of the 10 000 glyphs reserved for validation scenes (the rest are used for training).</summary>
    public const double ValidationGlyphFraction = 0.2;

    private const string ManifestFile = "scenes.json";
    private const int FormatVersion = 1;

    /// <summary>
    /// Generates the dataset: <c>train/NNNNNN.png</c>, <c>val/NNNNNN.png</c>, <c>instances_train.json</c>,
    /// <c>instances_val.json</c> (categories 1..10 named after the Fashion-MNIST classes) and <c>scenes.json</c>
    /// (the options, for <see cref="IsBuilt"/>). The same options give byte-identical files. Runs in parallel.
    /// </summary>
    /// <param name="options">What to generate.</param>
    /// <exception cref="ArgumentException">An option is out of range (see <see cref="FashionScenesOptions.Validate"/>).</exception>
    /// <exception cref="IOException">The output folder is a file or cannot be written; the message names the path.</exception>
    /// <exception cref="DataFormatException">The Fashion-MNIST files are missing or malformed.</exception>
    public static FashionScenesResult Build(FashionScenesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        string dir = PrepareOutputFolder(options.OutputFolder);
        var set = FashionMnistSet.Load(options.DataFolder);
        var (trainPool, valPool) = SplitGlyphs(set.Count, options.Seed);

        var manifest = Path.Combine(dir, ManifestFile);
        if (File.Exists(manifest))
            foreach (var sub in new[] { "train", "val" })
                if (Directory.Exists(Path.Combine(dir, sub)))
                    foreach (var png in Directory.EnumerateFiles(Path.Combine(dir, sub), "*.png")) File.Delete(png);
        File.Delete(manifest);

        var categories = FashionMnistSet.ClassNames.Select((n, i) => new CocoCategory(i + 1, n, "clothing")).ToList();
        int trainBoxes = WriteSplit(dir, "train", 1, options.TrainImages, trainPool, set, options, categories);
        int valBoxes = WriteSplit(dir, "val", 2, options.ValImages, valPool, set, options, categories);
        AtomicFile.WriteAllText(manifest, ManifestText(options));
        return new FashionScenesResult(dir, Path.Combine(dir, "instances_train.json"), Path.Combine(dir, "instances_val.json"),
            options.TrainImages, options.ValImages, trainBoxes, valBoxes);
    }

    /// <summary>
    /// Writes a third split, <c>test/NNNNNN.png</c> and <c>instances_test.json</c>, into a folder <see cref="Build"/> made:
    /// <paramref name="count"/> new scenes composed the same way (split seed 3) from the validation glyph pool, so no glyph
    /// of it appears in the training scenes. For checking that a model generalises to glyphs it never saw, on scenes
    /// that were not used to choose any setting. The same options give byte-identical files.
    /// </summary>
    /// <param name="options">The options the folder was built with.</param>
    /// <param name="count">Number of test scenes (1..<see cref="FashionScenesOptions.MaxImages"/>).</param>
    /// <returns>The path of instances_test.json.</returns>
    /// <exception cref="ArgumentException">An option or <paramref name="count"/> is out of range.</exception>
    /// <exception cref="IOException">The folder cannot be written.</exception>
    /// <exception cref="DataFormatException">The Fashion-MNIST files are missing or malformed.</exception>
    public static string BuildTestSplit(FashionScenesOptions options, int count)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (count is < 1 or > FashionScenesOptions.MaxImages)
            throw new ArgumentException($"count {count}: must be in 1..{FashionScenesOptions.MaxImages}", nameof(count));
        string dir = PrepareOutputFolder(options.OutputFolder);
        Directory.CreateDirectory(Path.Combine(dir, "test"));
        var set = FashionMnistSet.Load(options.DataFolder);
        var (_, valPool) = SplitGlyphs(set.Count, options.Seed);
        var categories = FashionMnistSet.ClassNames.Select((n, i) => new CocoCategory(i + 1, n, "clothing")).ToList();
        WriteSplit(dir, "test", 3, count, valPool, set, options, categories);
        return Path.Combine(dir, "instances_test.json");
    }

    /// <summary>True when <see cref="Build"/> already completed in the folder with the same generation options (the demo skips rebuilding).</summary>
    /// <param name="options">The options.</param>
    public static bool IsBuilt(FashionScenesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string dir = Path.GetFullPath(options.OutputFolder);
        string manifest = Path.Combine(dir, ManifestFile);
        return File.Exists(manifest) && File.Exists(Path.Combine(dir, "instances_train.json")) && File.Exists(Path.Combine(dir, "instances_val.json"))
            && File.ReadAllText(manifest) == ManifestText(options);
    }

    /// <summary>
    /// The glyph indices of the two splits: a seeded permutation of 0..count-1, the first 20% for validation and the
    /// rest for training, so that no glyph appears in both.
    /// </summary>
    public static (int[] Train, int[] Val) SplitGlyphs(int count, int seed)
    {
        var perm = Enumerable.Range(0, count).ToArray();
        new Random(SeedMix.Combine(seed, 0, -7)).Shuffle(perm);
        int nVal = (int)Math.Round(count * ValidationGlyphFraction);
        return (perm[nVal..], perm[..nVal]);
    }

    /// <summary>
    /// Composes one scene (deterministic for the given <paramref name="rng"/> state): background, then objects placed
    /// one by one with at most <see cref="FashionScenesOptions.MaxOverlap"/> overlap, each drawn over what is there.
    /// </summary>
    /// <param name="set">The glyphs.</param>
    /// <param name="pool">The glyph indices this split may use.</param>
    /// <param name="options">Size, counts, scales, overlap and backgrounds.</param>
    /// <param name="rng">The random source.</param>
    public static (RgbImage Image, IReadOnlyList<SceneObject> Objects) Compose(FashionMnistSet set, int[] pool, FashionScenesOptions options, Random rng)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        int s = options.Size;
        bool dark = rng.NextDouble() < 0.5;
        var pixels = Background(options, rng, dark);
        var objects = new List<SceneObject>();
        int wanted = rng.NextDouble() < options.EmptyFraction ? 0 : rng.Next(options.MinObjects, options.MaxObjects + 1);
        double maxScale = Math.Min(options.MaxScale, (double)s / FashionMnistSet.Side);
        double logMin = Math.Log(options.MinScale), logMax = Math.Log(Math.Max(options.MinScale, maxScale));
        for (int k = 0; k < wanted; k++)
        {
            int glyph = pool[rng.Next(pool.Length)];
            var colour = GlyphColour(rng, dark);
            // Try a few scales and places; later attempts use smaller scales so that crowded scenes still fill up.
            for (int attempt = 0; attempt < 12; attempt++)
            {
                double hi = logMin + (logMax - logMin) * (1 - attempt / 12.0);
                double scale = Math.Exp(logMin + (hi - logMin) * rng.NextDouble());
                int side = Math.Clamp((int)Math.Round(FashionMnistSet.Side * scale), 1, s);
                var g = ScaleGlyph(set.Image(glyph), side);
                if (!TightBounds(g, side, out int gx1, out int gy1, out int gx2, out int gy2)) break;
                int ox = rng.Next(-gx1, s - gx2 + 1), oy = rng.Next(-gy1, s - gy2 + 1);
                var box = (X1: ox + gx1, Y1: oy + gy1, X2: ox + gx2, Y2: oy + gy2);
                if (objects.Any(o => OverlapOfSmaller(o, box) > options.MaxOverlap)) continue;
                Draw(pixels, s, g, side, ox, oy, colour);
                objects.Add(new SceneObject(glyph, set.Label(glyph), box.X1, box.Y1, box.X2, box.Y2));
                break;
            }
        }
        return (new RgbImage(pixels, s, s), objects);
    }

    /// <summary>
    /// Scales a 28x28 glyph to <paramref name="side"/> x <paramref name="side"/> (bilinear, half-pixel centres) and clears
    /// values below <see cref="GlyphThreshold"/>.
    /// </summary>
    public static byte[] ScaleGlyph(ReadOnlySpan<byte> glyph, int side)
    {
        const int n = FashionMnistSet.Side;
        var dst = new byte[side * side];
        float r = (float)n / side;
        for (int y = 0; y < side; y++)
        {
            float sy = Math.Max(0f, (y + 0.5f) * r - 0.5f);
            int y0 = Math.Min((int)sy, n - 1), y1 = Math.Min(y0 + 1, n - 1);
            float fy = sy - (int)sy;
            for (int x = 0; x < side; x++)
            {
                float sx = Math.Max(0f, (x + 0.5f) * r - 0.5f);
                int x0 = Math.Min((int)sx, n - 1), x1 = Math.Min(x0 + 1, n - 1);
                float fx = sx - (int)sx;
                float top = glyph[y0 * n + x0] + (glyph[y0 * n + x1] - glyph[y0 * n + x0]) * fx;
                float bottom = glyph[y1 * n + x0] + (glyph[y1 * n + x1] - glyph[y1 * n + x0]) * fx;
                int v = (int)MathF.Round(top + (bottom - top) * fy);
                dst[y * side + x] = v < GlyphThreshold ? (byte)0 : (byte)Math.Min(v, 255);
            }
        }
        return dst;
    }

    /// <summary>The bounds [x1, x2) x [y1, y2) of the non-zero pixels of a square glyph; false when it has none.</summary>
    public static bool TightBounds(byte[] glyph, int side, out int x1, out int y1, out int x2, out int y2)
    {
        x1 = y1 = int.MaxValue; x2 = y2 = int.MinValue;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
                if (glyph[y * side + x] != 0)
                {
                    x1 = Math.Min(x1, x); y1 = Math.Min(y1, y); x2 = Math.Max(x2, x + 1); y2 = Math.Max(y2, y + 1);
                }
        return x2 > x1;
    }

    private static int WriteSplit(string dir, string split, int splitId, int count, int[] pool, FashionMnistSet set,
        FashionScenesOptions options, IReadOnlyList<CocoCategory> categories)
    {
        var objects = new IReadOnlyList<SceneObject>[count];
        Parallel.For(0, count, i =>
        {
            var rng = new Random(SeedMix.Combine(options.Seed, splitId, i));
            var (image, objs) = Compose(set, pool, options, rng);
            ImageIO.SavePng(image, Path.Combine(dir, split, FileName(i)), durable: false);
            objects[i] = objs;
        });
        var images = new List<CocoImage>(count);
        var annotations = new List<CocoAnnotation>();
        for (int i = 0; i < count; i++)
        {
            images.Add(new CocoImage(i + 1, $"{split}/{FileName(i)}", options.Size, options.Size));
            foreach (var o in objects[i])
            {
                int w = o.X2 - o.X1, h = o.Y2 - o.Y1;
                annotations.Add(new CocoAnnotation(annotations.Count + 1, i + 1, o.Label + 1, o.X1, o.Y1, w, h, w * h, false));
            }
        }
        CocoJson.WriteInstances(Path.Combine(dir, $"instances_{split}.json"), new CocoInstances(images, annotations, categories));
        return annotations.Count;
    }

    private static string FileName(int index) => $"{index + 1:D6}.png";

    private static string PrepareOutputFolder(string folder)
    {
        string dir = Path.GetFullPath(folder);
        if (File.Exists(dir))
            throw new IOException($"output folder '{dir}' is a file");
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "train"));
            Directory.CreateDirectory(Path.Combine(dir, "val"));
            string probe = Path.Combine(dir, $".write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, System.Array.Empty<byte>());
            File.Delete(probe);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException($"output folder '{dir}' is not writable: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new IOException($"cannot create or write the output folder '{dir}': {e.Message}", e);
        }
        return dir;
    }

    private static string ManifestText(FashionScenesOptions o) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["format"] = FormatVersion, ["train"] = o.TrainImages, ["val"] = o.ValImages, ["size"] = o.Size, ["seed"] = o.Seed,
        ["objects"] = new[] { o.MinObjects, o.MaxObjects }, ["scale"] = new[] { o.MinScale, o.MaxScale },
        ["empty_fraction"] = o.EmptyFraction, ["max_overlap"] = o.MaxOverlap, ["backgrounds"] = (int)o.Backgrounds,
    });

    private static double OverlapOfSmaller(SceneObject a, (int X1, int Y1, int X2, int Y2) b)
    {
        int iw = Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1), ih = Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1);
        if (iw <= 0 || ih <= 0) return 0;
        double smaller = Math.Min((a.X2 - a.X1) * (a.Y2 - a.Y1), (b.X2 - b.X1) * (b.Y2 - b.Y1));
        return iw * (double)ih / smaller;
    }

    // Dark scenes: background channels in [0, 90], glyph colours in [170, 255]; light scenes the reverse,
    // so that every glyph stands out from its background whatever the style.
    private static (int R, int G, int B) GlyphColour(Random rng, bool darkBackground) =>
        darkBackground ? (rng.Next(170, 256), rng.Next(170, 256), rng.Next(170, 256)) : (rng.Next(0, 86), rng.Next(0, 86), rng.Next(0, 86));

    private static (int R, int G, int B) BackgroundColour(Random rng, bool dark, int margin) =>
        dark ? (rng.Next(margin, 91 - margin), rng.Next(margin, 91 - margin), rng.Next(margin, 91 - margin))
             : (rng.Next(165 + margin, 256 - margin), rng.Next(165 + margin, 256 - margin), rng.Next(165 + margin, 256 - margin));

    private static byte[] Background(FashionScenesOptions options, Random rng, bool dark)
    {
        int s = options.Size;
        var styles = Enum.GetValues<SceneBackgrounds>().Where(b => b != SceneBackgrounds.All && options.Backgrounds.HasFlag(b)).ToArray();
        var style = styles[rng.Next(styles.Length)];
        var px = new byte[s * s * 3];
        int lo = dark ? 0 : 165, hi = dark ? 90 : 255;
        switch (style)
        {
            case SceneBackgrounds.Flat:
            {
                var c = BackgroundColour(rng, dark, 0);
                for (int i = 0; i < s * s; i++) { px[3 * i] = (byte)c.R; px[3 * i + 1] = (byte)c.G; px[3 * i + 2] = (byte)c.B; }
                break;
            }
            case SceneBackgrounds.Gradient:
            {
                var a = BackgroundColour(rng, dark, 0);
                var b = BackgroundColour(rng, dark, 0);
                double angle = rng.NextDouble() * 2 * Math.PI, dx = Math.Cos(angle), dy = Math.Sin(angle);
                double min = Math.Min(0, dx * (s - 1)) + Math.Min(0, dy * (s - 1)), range = Math.Abs(dx) * (s - 1) + Math.Abs(dy) * (s - 1);
                for (int y = 0; y < s; y++)
                    for (int x = 0; x < s; x++)
                    {
                        double t = ((x * dx + y * dy) - min) / Math.Max(range, 1e-9);
                        int i = 3 * (y * s + x);
                        px[i] = (byte)Math.Round(a.R + (b.R - a.R) * t);
                        px[i + 1] = (byte)Math.Round(a.G + (b.G - a.G) * t);
                        px[i + 2] = (byte)Math.Round(a.B + (b.B - a.B) * t);
                    }
                break;
            }
            case SceneBackgrounds.Noise:
            {
                var c = BackgroundColour(rng, dark, 0);
                int amp = rng.Next(10, 31);
                for (int i = 0; i < s * s; i++)
                {
                    px[3 * i] = (byte)Math.Clamp(c.R + rng.Next(-amp, amp + 1), lo, hi);
                    px[3 * i + 1] = (byte)Math.Clamp(c.G + rng.Next(-amp, amp + 1), lo, hi);
                    px[3 * i + 2] = (byte)Math.Clamp(c.B + rng.Next(-amp, amp + 1), lo, hi);
                }
                break;
            }
            default: // Texture: two sinusoidal stripe patterns of random frequency, direction and phase.
            {
                var c = BackgroundColour(rng, dark, 0);
                double f1 = 0.05 + rng.NextDouble() * 0.5, a1 = rng.NextDouble() * Math.PI, p1 = rng.NextDouble() * 2 * Math.PI;
                double f2 = 0.05 + rng.NextDouble() * 0.5, a2 = rng.NextDouble() * Math.PI, p2 = rng.NextDouble() * 2 * Math.PI;
                int amp = rng.Next(10, 31);
                // sin(u + v) = sin u cos v + cos u sin v with u depending on x only and v on y only.
                var (sx1, cx1) = Waves(s, f1 * Math.Cos(a1), 0);
                var (sy1, cy1) = Waves(s, f1 * Math.Sin(a1), p1);
                var (sx2, cx2) = Waves(s, f2 * Math.Cos(a2), 0);
                var (sy2, cy2) = Waves(s, f2 * Math.Sin(a2), p2);
                for (int y = 0; y < s; y++)
                    for (int x = 0; x < s; x++)
                    {
                        double v = 0.5 * (sx1[x] * cy1[y] + cx1[x] * sy1[y] + sx2[x] * cy2[y] + cx2[x] * sy2[y]);
                        int d = (int)Math.Round(amp * v), i = 3 * (y * s + x);
                        px[i] = (byte)Math.Clamp(c.R + d, lo, hi);
                        px[i + 1] = (byte)Math.Clamp(c.G + d, lo, hi);
                        px[i + 2] = (byte)Math.Clamp(c.B + d, lo, hi);
                    }
                break;
            }
        }
        return px;
    }

    private static (double[] Sin, double[] Cos) Waves(int n, double frequency, double phase)
    {
        var sin = new double[n];
        var cos = new double[n];
        for (int i = 0; i < n; i++) (sin[i], cos[i]) = Math.SinCos(frequency * i + phase);
        return (sin, cos);
    }

    // out = background * (1 - a) + colour * a with a = glyph / 255, only where the glyph is non-zero.
    private static void Draw(byte[] px, int s, byte[] glyph, int side, int ox, int oy, (int R, int G, int B) colour)
    {
        for (int y = 0; y < side; y++)
        {
            int py = oy + y;
            if ((uint)py >= (uint)s) continue;
            for (int x = 0; x < side; x++)
            {
                int v = glyph[y * side + x];
                int pxx = ox + x;
                if (v == 0 || (uint)pxx >= (uint)s) continue;
                int i = 3 * (py * s + pxx);
                px[i] = Blend(px[i], colour.R, v);
                px[i + 1] = Blend(px[i + 1], colour.G, v);
                px[i + 2] = Blend(px[i + 2], colour.B, v);
            }
        }
    }

    private static byte Blend(byte background, int colour, int alpha) => (byte)((background * (255 - alpha) + colour * alpha + 127) / 255);
}
