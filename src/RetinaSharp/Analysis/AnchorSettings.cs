// The anchor configuration that decides which ground-truth boxes RetinaNet can learn: anchor sizes per pyramid level
// and aspect ratios (paper section 4 "Anchors"), the training resize (torchvision GeneralizedRCNNTransform) and the
// matcher thresholds (paper: IoU >= 0.5 foreground, < 0.4 background, between ignored).
using RetinaSharp.Modeling;

namespace RetinaSharp.Analysis;

/// <summary>
/// Anchors as training sees them: sizes per level P3..P7 (pixels, sqrt of the anchor area), aspect ratios
/// (height / width, shared by all levels), the resize (shorter side to <see cref="MinSize"/>, longer side at most
/// <see cref="MaxSize"/>, padding to <see cref="SizeDivisible"/>) and the matcher's IoU thresholds.
/// </summary>
/// <param name="Sizes">Per level P3..P7, the anchor sizes in pixels; every level the same count.</param>
/// <param name="AspectRatios">Height / width ratios, shared by all levels.</param>
public sealed record AnchorSettings(int[][] Sizes, double[] AspectRatios)
{
    /// <summary>Shorter image side after the resize, pixels. Default 800.</summary>
    public int MinSize { get; init; } = 800;
    /// <summary>Upper bound of the longer side after the resize, pixels. Default 1333.</summary>
    public int MaxSize { get; init; } = 1333;
    /// <summary>The padded size is a multiple of this, pixels. Default 32.</summary>
    public int SizeDivisible { get; init; } = 32;
    /// <summary>Anchors with IoU at least this are positive (foreground). Default 0.5.</summary>
    public double FgIouThreshold { get; init; } = 0.5;
    /// <summary>Anchors with IoU below this are background; between the two thresholds, ignored. Default 0.4.</summary>
    public double BgIouThreshold { get; init; } = 0.4;

    /// <summary>Anchors per feature-map location: sizes per level × aspect ratios.</summary>
    public int AnchorsPerLocation => Sizes[0].Length * AspectRatios.Length;

    /// <summary>The settings a model with <paramref name="options"/> trains with.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    public static AnchorSettings From(RetinaNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new AnchorSettings([.. options.EffectiveAnchorSizes().Select(l => (int[])l.Clone())], (double[])options.AspectRatios.Clone())
        {
            MinSize = options.MinSize, MaxSize = options.MaxSize, SizeDivisible = options.SizeDivisible,
            FgIouThreshold = options.FgIouThreshold, BgIouThreshold = options.BgIouThreshold,
        };
    }

    /// <summary>torchvision RetinaNet's defaults (sizes 32·2^(i/3) per octave, ratios 0.5, 1, 2, resize 800/1333, IoU 0.5/0.4).</summary>
    public static AnchorSettings Default() => From(new RetinaNetOptions(1));

    /// <summary><paramref name="options"/> with these anchor sizes and aspect ratios (resize and thresholds unchanged).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    public RetinaNetOptions ApplyAnchorsTo(RetinaNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options with { AnchorSizes = [.. Sizes.Select(l => (int[])l.Clone())], AspectRatios = (double[])AspectRatios.Clone() };
    }

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and its value.</exception>
    public void Validate()
    {
        static void Fail(string field, object? value, string why) => throw new ArgumentException($"anchors: {field} = {value}: {why}", field);
        if (Sizes is null || Sizes.Length != 5) Fail(nameof(Sizes), Sizes?.Length, "must list 5 levels (P3..P7)");
        for (int l = 0; l < Sizes!.Length; l++)
        {
            var s = Sizes[l];
            if (s is null || s.Length == 0 || s.Length != Sizes[0].Length) Fail($"{nameof(Sizes)}[{l}]", s?.Length, $"every level needs the same non-zero number of sizes ({Sizes[0]?.Length})");
            foreach (var v in s!) if (v <= 0) Fail($"{nameof(Sizes)}[{l}]", v, "sizes must be positive pixels");
        }
        if (AspectRatios is not { Length: > 0 } || AspectRatios.Any(r => !double.IsFinite(r) || r <= 0))
            Fail(nameof(AspectRatios), AspectRatios is null ? null : string.Join(",", AspectRatios), "must be non-empty, finite and positive");
        if (MinSize < 1) Fail(nameof(MinSize), MinSize, "must be positive");
        if (MaxSize < MinSize) Fail(nameof(MaxSize), MaxSize, $"must be at least MinSize ({MinSize})");
        if (SizeDivisible < 1) Fail(nameof(SizeDivisible), SizeDivisible, "must be positive");
        if (!(BgIouThreshold >= 0 && BgIouThreshold <= FgIouThreshold && FgIouThreshold <= 1 && FgIouThreshold > 0))
            Fail(nameof(BgIouThreshold), BgIouThreshold, $"must satisfy 0 <= bg <= fg ({FgIouThreshold}) <= 1, fg > 0");
    }

    /// <summary>
    /// Parses anchor sizes as typed on a command line: levels P3..P7 separated by ';', the sizes of a level by ','
    /// ("32,40,50;64,80,101;128,161,203;256,322,406;512,645,812"), or 5 comma-separated values, one size per level
    /// ("32,64,128,256,512").
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="option">The option or field name for the error message.</param>
    /// <exception cref="ArgumentException">Not 5 levels, a level with another count, or a value that is not a positive integer; names <paramref name="option"/>.</exception>
    public static int[][] ParseSizes(string text, string option = "--anchor-sizes")
    {
        ArgumentNullException.ThrowIfNull(text);
        var levels = text.Contains(';') ? text.Split(';', StringSplitOptions.TrimEntries) : text.Split(',', StringSplitOptions.TrimEntries);
        if (levels.Length != 5)
            throw new ArgumentException($"{option} '{text}': expected 5 levels (P3..P7) separated by ';' (or 5 sizes, one per level), got {levels.Length}", option);
        var sizes = new int[5][];
        for (int l = 0; l < 5; l++)
        {
            sizes[l] = [.. levels[l].Split(',', StringSplitOptions.TrimEntries).Select(v =>
                int.TryParse(v, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int i) && i > 0 ? i
                : throw new ArgumentException($"{option} '{text}': level {l} (P{l + 3}) size '{v}' is not a positive integer (pixels)", option))];
            if (sizes[l].Length != sizes[0].Length)
                throw new ArgumentException($"{option} '{text}': level {l} (P{l + 3}) has {sizes[l].Length} sizes, level 0 has {sizes[0].Length}; every level needs the same count", option);
        }
        return sizes;
    }

    /// <summary>Parses comma-separated aspect ratios (height / width), for example "0.5,1,2".</summary>
    /// <exception cref="ArgumentException">Empty, or a value that is not a positive finite number; names <paramref name="option"/>.</exception>
    public static double[] ParseAspectRatios(string text, string option = "--aspect-ratios")
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException($"{option} '{text}': expected at least one ratio (height / width), e.g. 0.5,1,2", option);
        return [.. parts.Select(v =>
            double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double r) && double.IsFinite(r) && r > 0 ? r
            : throw new ArgumentException($"{option} '{text}': ratio '{v}' is not a positive number (height / width)", option))];
    }
}
