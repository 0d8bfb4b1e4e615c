// Settings of the Fashion-MNIST detection-scene builder (`retina data fashion-scenes`), defaults sized for
// `retina demo` on a 2-core CPU: 128x128 scenes, 2000 training and 300 validation images.
namespace RetinaSharp.Data.FashionMnist;

/// <summary>The background styles of generated scenes.</summary>
[Flags]
public enum SceneBackgrounds
{
    /// <summary>One flat colour.</summary>
    Flat = 1,
    /// <summary>A linear gradient between two colours in a random direction.</summary>
    Gradient = 2,
    /// <summary>A colour with per-pixel uniform noise.</summary>
    Noise = 4,
    /// <summary>A colour modulated by two random sinusoidal stripe patterns.</summary>
    Texture = 8,
    /// <summary>All of them, chosen uniformly per image.</summary>
    All = Flat | Gradient | Noise | Texture,
}

/// <summary>What <see cref="FashionScenes.Build"/> generates.</summary>
/// <param name="OutputFolder">The dataset folder (created when missing): train/*.png, val/*.png, instances_train.json, instances_val.json.</param>
/// <param name="TrainImages">Training scenes (&gt; 0).</param>
/// <param name="ValImages">Validation scenes (&gt; 0).</param>
/// <param name="Size">Scene side length S in pixels (scenes are S x S), at least <see cref="MinSize"/>.</param>
/// <param name="Seed">Seed: the same options give byte-identical files.</param>
/// <param name="DataFolder">The Fashion-MNIST folder; null = <see cref="FashionMnistSet.FindDataFolder"/>.</param>
/// <param name="MinObjects">Fewest objects in a non-empty scene (&gt;= 1).</param>
/// <param name="MaxObjects">Most objects in a scene (&gt;= MinObjects); fewer when they do not fit under the overlap bound.</param>
/// <param name="MinScale">Smallest glyph scale (1 = 28 px).</param>
/// <param name="MaxScale">Largest glyph scale (4 = 112 px), capped so that a glyph fits in the scene.</param>
/// <param name="EmptyFraction">Probability that a scene has no object (a negative image), in [0, 1).</param>
/// <param name="MaxOverlap">Bound on the overlap of two boxes: intersection / area of the smaller box, in [0, 1].</param>
/// <param name="Backgrounds">The background styles to draw from.</param>
public sealed record FashionScenesOptions(
    string OutputFolder,
    int TrainImages = 2000,
    int ValImages = 300,
    int Size = 128,
    int Seed = 0,
    string? DataFolder = null,
    int MinObjects = 1,
    int MaxObjects = 8,
    double MinScale = 1.0,
    double MaxScale = 4.0,
    double EmptyFraction = 0.05,
    double MaxOverlap = 0.25,
    SceneBackgrounds Backgrounds = SceneBackgrounds.All)
{
    /// <summary>The smallest useful scene size: two 28-pixel glyphs side by side plus margin.</summary>
    public const int MinSize = 64;

    /// <summary>The largest scene size accepted.</summary>
    public const int MaxSize = 2048;

    /// <summary>Largest number of scenes per split (--train, --val): a million 128x128 PNGs already fill about 20 GB;
    /// beyond it a typo such as 2147483647 would exhaust memory and disk instead of failing with a message.</summary>
    public const int MaxImages = 1_000_000;

    /// <summary>Checks every value.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names the option and the value.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputFolder))
            throw new ArgumentException("the output folder (--out) is empty", nameof(OutputFolder));
        if (TrainImages <= 0 || TrainImages > MaxImages)
            throw new ArgumentOutOfRangeException(nameof(TrainImages), $"the number of training scenes (--train) must be in 1..{MaxImages}, found {TrainImages}");
        if (ValImages <= 0 || ValImages > MaxImages)
            throw new ArgumentOutOfRangeException(nameof(ValImages), $"the number of validation scenes (--val) must be in 1..{MaxImages}, found {ValImages}");
        if (Size < MinSize || Size > MaxSize)
            throw new ArgumentOutOfRangeException(nameof(Size), $"the scene size (--size) must be in {MinSize}..{MaxSize} pixels, found {Size}");
        if (MinObjects < 1 || MaxObjects < MinObjects)
            throw new ArgumentException($"objects per scene must satisfy 1 <= MinObjects <= MaxObjects, found {MinObjects}..{MaxObjects}", nameof(MinObjects));
        if (!(MinScale > 0) || !(MaxScale >= MinScale) || MinScale * FashionMnistSet.Side > Size)
            throw new ArgumentException($"glyph scales must satisfy 0 < MinScale <= MaxScale and MinScale * 28 <= Size, found {MinScale}..{MaxScale}", nameof(MinScale));
        if (!(EmptyFraction >= 0 && EmptyFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(EmptyFraction), $"EmptyFraction must be in [0, 1), found {EmptyFraction}");
        if (!(MaxOverlap >= 0 && MaxOverlap <= 1))
            throw new ArgumentOutOfRangeException(nameof(MaxOverlap), $"MaxOverlap must be in [0, 1], found {MaxOverlap}");
        if ((Backgrounds & SceneBackgrounds.All) == 0)
            throw new ArgumentException("no background style selected", nameof(Backgrounds));
    }
}
