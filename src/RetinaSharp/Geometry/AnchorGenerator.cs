// Reference behaviour: torchvision.models.detection.anchor_utils.AnchorGenerator (generate_anchors,
// grid_anchors) as configured by torchvision.models.detection.retinanet._default_anchorgen, torchvision 0.14;
// RetinaNet paper (Lin et al. 2017) section 4 "Anchors". Same anchors, order and rounding.
using TorchSharp;
using static RetinaSharp.TorchScalars;
using static TorchSharp.torch;

namespace RetinaSharp.Geometry;

/// <summary>
/// Dense anchors for each pyramid level. At every feature-map cell (row-major, y then x) of level l the
/// anchors are the level's cell anchors shifted by (x * stride_x, y * stride_y), where the stride is the
/// integer division (padded image size) / (feature size). The cell anchors of a level are centred at 0,
/// ordered aspect ratio first then size, each [-w/2, -h/2, w/2, h/2] rounded to integers, with
/// h = size * sqrt(ratio), w = size / sqrt(ratio) computed in float32 (ratio = height / width).
/// Anchors are cached per (image size, feature sizes, device); callers receive fresh aliases.
/// </summary>
public sealed class AnchorGenerator
{
    private const int MaxCacheEntries = 32;
    private readonly double[][] sizesPerLevel;
    private readonly double[] aspectRatios;
    private readonly Tensor[] cellAnchors; // per level (A, 4) float32 on CPU, owned by this object
    private readonly Dictionary<string, Tensor[]> cache = new();
    private readonly object gate = new();

    /// <summary>
    /// Creates a generator with the given anchor sizes per level (all levels must have the same count) and
    /// aspect ratios (height / width) shared by all levels.
    /// </summary>
    /// <param name="sizesPerLevel">Per level, the anchor sizes in pixels (sqrt of the area); null = <see cref="RetinaNetDefault"/>'s.</param>
    /// <param name="aspectRatios">Height / width ratios; null = (0.5, 1, 2).</param>
    /// <exception cref="ArgumentException">No levels, an empty level, levels with different counts, or a size or ratio that is not finite and positive.</exception>
    public AnchorGenerator(IReadOnlyList<double[]>? sizesPerLevel = null, double[]? aspectRatios = null)
    {
        sizesPerLevel ??= DefaultSizes();
        aspectRatios ??= new[] { 0.5, 1.0, 2.0 };
        if (sizesPerLevel.Count == 0) throw new ArgumentException("at least one pyramid level is needed", nameof(sizesPerLevel));
        if (aspectRatios.Length == 0) throw new ArgumentException("at least one aspect ratio is needed", nameof(aspectRatios));
        for (int l = 0; l < sizesPerLevel.Count; l++)
        {
            var s = sizesPerLevel[l] ?? throw new ArgumentException($"level {l} sizes are null", nameof(sizesPerLevel));
            if (s.Length == 0 || s.Length != sizesPerLevel[0].Length)
                throw new ArgumentException($"level {l} has {s.Length} sizes; every level needs the same non-zero count ({sizesPerLevel[0].Length})", nameof(sizesPerLevel));
            foreach (var v in s)
                if (!double.IsFinite(v) || v <= 0) throw new ArgumentException($"level {l} size {v} must be finite and > 0", nameof(sizesPerLevel));
        }
        foreach (var r in aspectRatios)
            if (!double.IsFinite(r) || r <= 0) throw new ArgumentException($"aspect ratio {r} must be finite and > 0", nameof(aspectRatios));
        this.sizesPerLevel = sizesPerLevel.Select(s => (double[])s.Clone()).ToArray();
        this.aspectRatios = (double[])aspectRatios.Clone();
        cellAnchors = this.sizesPerLevel.Select(s => MakeCellAnchors(s, this.aspectRatios)).ToArray();
    }

    /// <summary>
    /// torchvision RetinaNet's anchors: levels P3-P7 with sizes (x, int(x 2^(1/3)), int(x 2^(2/3))) for
    /// x = 32, 64, 128, 256, 512 (so 32, 40, 50 on P3) and aspect ratios 0.5, 1, 2: 9 anchors per location.
    /// </summary>
    public static AnchorGenerator RetinaNetDefault() => new(DefaultSizes(), new[] { 0.5, 1.0, 2.0 });

    /// <summary>Anchors per feature-map location: sizes per level x aspect ratios (9 for RetinaNet).</summary>
    public int AnchorsPerLocation => sizesPerLevel[0].Length * aspectRatios.Length;

    /// <summary>The number of pyramid levels.</summary>
    public int NumLevels => sizesPerLevel.Length;

    /// <summary>The cell anchors of level <paramref name="level"/>: (A, 4) float32, XYXY centred at 0, in torchvision's order.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No such level.</exception>
    public Tensor CellAnchors(int level)
    {
        if (level < 0 || level >= cellAnchors.Length) throw new ArgumentOutOfRangeException(nameof(level), level, $"levels are 0..{cellAnchors.Length - 1}");
        return cellAnchors[level].clone();
    }

    /// <summary>
    /// Anchors of every level for one image size. torchvision <c>AnchorGenerator.forward</c> for one image.
    /// </summary>
    /// <param name="imageSize">Size of the (padded) batch tensor the features were computed from, pixels.</param>
    /// <param name="featureSizes">Per level, the feature-map height and width.</param>
    /// <param name="device">Device of the result; null = CPU.</param>
    /// <returns>Per level, (H_l * W_l * A, 4) float32 XYXY anchors in pixels: location-major (row, then column), anchor-minor.</returns>
    /// <exception cref="ArgumentException">The level count differs from the generator's, or a size is not positive.</exception>
    public Tensor[] AnchorsPerLevel((long Height, long Width) imageSize, IReadOnlyList<(long Height, long Width)> featureSizes, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(featureSizes);
        if (featureSizes.Count != cellAnchors.Length)
            throw new ArgumentException($"{featureSizes.Count} feature maps given but the generator has {cellAnchors.Length} levels", nameof(featureSizes));
        if (imageSize.Height <= 0 || imageSize.Width <= 0)
            throw new ArgumentException($"image size ({imageSize.Height}, {imageSize.Width}) must be positive", nameof(imageSize));
        foreach (var f in featureSizes)
            if (f.Height <= 0 || f.Width <= 0) throw new ArgumentException($"feature size ({f.Height}, {f.Width}) must be positive", nameof(featureSizes));
        device ??= CPU;
        string key = $"{imageSize.Height}x{imageSize.Width}|{string.Join(";", featureSizes.Select(f => $"{f.Height}x{f.Width}"))}|{device}";
        Tensor[]? levels;
        lock (gate)
        {
            if (!cache.TryGetValue(key, out levels))
            {
                levels = new Tensor[cellAnchors.Length];
                using (var scope = NewDisposeScope())
                {
                    for (int l = 0; l < levels.Length; l++)
                        levels[l] = GridAnchors(cellAnchors[l], imageSize, featureSizes[l]).to(device).MoveToOuterDisposeScope();
                }
                foreach (var t in levels) t.DetachFromDisposeScope();
                if (cache.Count >= MaxCacheEntries)
                {
                    foreach (var old in cache.Values) foreach (var t in old) t.Dispose();
                    cache.Clear();
                }
                cache[key] = levels;
            }
            return levels.Select(t => t.alias()).ToArray();
        }
    }

    private static double[][] DefaultSizes() =>
        new[] { 32.0, 64, 128, 256, 512 }
            .Select(x => new[] { x, Math.Truncate(x * Math.Pow(2, 1.0 / 3)), Math.Truncate(x * Math.Pow(2, 2.0 / 3)) })
            .ToArray();

    /// <summary>(R * S, 4) cell anchors, ratio-major; float32 arithmetic as torchvision's generate_anchors.</summary>
    private static Tensor MakeCellAnchors(double[] sizes, double[] ratios)
    {
        using var scope = NewDisposeScope();
        var scales = tensor(sizes.Select(s => (float)s).ToArray());
        var hRatios = tensor(ratios.Select(r => (float)r).ToArray()).sqrt();
        var wRatios = hRatios.reciprocal();
        var ws = (wRatios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
        var hs = (hRatios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
        var cell = stack(new[] { -ws, -hs, ws, hs }, 1).div(Two).round();
        var result = cell.MoveToOuterDisposeScope();
        result.DetachFromDisposeScope();
        return result;
    }

    private static Tensor GridAnchors(Tensor cell, (long Height, long Width) imageSize, (long Height, long Width) featureSize)
    {
        long strideY = imageSize.Height / featureSize.Height;
        long strideX = imageSize.Width / featureSize.Width;
        using var width = featureSize.Width.ToScalar();
        using var height = featureSize.Height.ToScalar();
        using var sx0 = strideX.ToScalar();
        using var sy0 = strideY.ToScalar();
        var shiftsX = arange(Zero, width, One, dtype: ScalarType.Int64).mul(sx0);
        var shiftsY = arange(Zero, height, One, dtype: ScalarType.Int64).mul(sy0);
        var grid = meshgrid(new[] { shiftsY, shiftsX }, indexing: "ij");
        var sy = grid[0].reshape(-1);
        var sx = grid[1].reshape(-1);
        var shifts = stack(new[] { sx, sy, sx, sy }, 1).to_type(ScalarType.Float32); // (H*W, 4)
        return shifts.view(-1, 1, 4).add(cell.view(1, -1, 4), One).reshape(-1, 4);   // (H*W*A, 4)
    }
}
