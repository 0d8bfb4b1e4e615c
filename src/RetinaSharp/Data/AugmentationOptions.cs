// Training-time augmentation settings. The paper (RetinaNet, Lin et al. 2017, section 5.1) trains with
// horizontal flipping only; scale jitter (multi-scale shorter side, section 5.2 "scale jitter") is optional.
namespace RetinaSharp.Data;

/// <summary>What <see cref="Augmentation.Apply"/> does to each training image; the default is the paper's flip only.</summary>
/// <param name="HorizontalFlip">Flip left-right with probability <paramref name="FlipProbability"/>.</param>
/// <param name="ShorterSideScales">Resize in the loader: the shorter side is resized to one of these lengths (pixels), chosen uniformly; null = no resize.
/// The model's <c>DetectionTransform</c> then resizes every image again to its own size, so this alone does not train at
/// several scales: for multi-scale training set <c>RetinaNetOptions.TrainMinSizes</c> (what `retina train --scales` does).</param>
/// <param name="ShorterSideRange">Multi-scale resize from a range: the shorter side is drawn uniformly from [Min, Max] pixels (used when <paramref name="ShorterSideScales"/> is null); null = none.</param>
/// <param name="MaxLongerSide">When resizing, the scale is reduced so that the longer side stays at most this many pixels; null = no limit.</param>
/// <param name="FlipProbability">Probability of a flip when <paramref name="HorizontalFlip"/> is on, in [0, 1].</param>
public sealed record AugmentationOptions(
    bool HorizontalFlip = true,
    int[]? ShorterSideScales = null,
    (int Min, int Max)? ShorterSideRange = null,
    int? MaxLongerSide = null,
    double FlipProbability = 0.5)
{
    /// <summary>No augmentation at all (validation, evaluation).</summary>
    public static AugmentationOptions None { get; } = new(HorizontalFlip: false);

    /// <summary>Largest shorter side a resize may ask for, pixels (16384: an image that size is already 1 GiB of
    /// float32 RGB; beyond it a typo such as 100000 would exhaust memory instead of failing with a message).</summary>
    public const int MaxSide = 16384;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A scale or limit is not positive or a side exceeds <see cref="MaxSide"/>, the range is empty, or the probability is outside [0, 1].</exception>
    public void Validate()
    {
        if (ShorterSideScales is { } s)
        {
            if (s.Length == 0) throw new ArgumentException("ShorterSideScales is empty (use null for no resize)", nameof(ShorterSideScales));
            foreach (int v in s)
                if (v <= 0 || v > MaxSide) throw new ArgumentException($"ShorterSideScales must be in 1..{MaxSide} pixels, found {v}", nameof(ShorterSideScales));
        }
        if (ShorterSideRange is { } r && (r.Min <= 0 || r.Max < r.Min || r.Max > MaxSide))
            throw new ArgumentException($"ShorterSideRange must satisfy 0 < Min <= Max <= {MaxSide}, found [{r.Min}, {r.Max}]", nameof(ShorterSideRange));
        if (MaxLongerSide is <= 0)
            throw new ArgumentException($"MaxLongerSide must be positive, found {MaxLongerSide}", nameof(MaxLongerSide));
        if (!(FlipProbability >= 0 && FlipProbability <= 1))
            throw new ArgumentException($"FlipProbability must be in [0, 1], found {FlipProbability}", nameof(FlipProbability));
    }
}
