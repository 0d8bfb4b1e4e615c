// Anchor fitting: searches anchor sizes and aspect ratios with the same anchor count per location (S sizes per level ×
// R ratios) that give the most ground-truth boxes a positive anchor. The sizes of level l are b · 2^l · 2^(j·step),
// j = 0..S-1 (an octave per level as the paper's P3-P7, with `step` the octave fraction between scales; 1/3 in the
// paper), the ratios 2^(linspace(-q, q, R)) (symmetric around 1 in log space; 0.5, 1, 2 is q = 1). A grid search over
// (b, step, q) on a subsample is followed by a per-level refinement of each level's scale (2^(±1/8), 2^(±1/4)).
namespace RetinaSharp.Analysis;

/// <summary>The outcome of <see cref="AnchorFit.Fit"/>.</summary>
/// <param name="Before">Coverage of the configured anchors on all boxes.</param>
/// <param name="After">Coverage of the fitted anchors on all boxes.</param>
/// <param name="Evaluations">Anchor sets tried.</param>
public sealed record AnchorFitResult(AnchorCoverageResult Before, AnchorCoverageResult After, int Evaluations)
{
    /// <summary>The fitted settings (resize and thresholds as configured).</summary>
    public AnchorSettings Fitted => After.Settings;
}

/// <summary>Searches anchors that maximise the fraction of boxes with a positive anchor at a fixed anchor count.</summary>
public static class AnchorFit
{
    /// <summary>
    /// Fits anchor sizes (base, octave step, per-level scale) and aspect ratios (spread) to <paramref name="boxes"/>,
    /// keeping the number of sizes per level and of ratios of <paramref name="settings"/>. The search scores
    /// at most <paramref name="maxSearchBoxes"/> boxes (every k-th); before and after are measured on all boxes.
    /// The configured anchors are kept when nothing found beats them.
    /// </summary>
    /// <param name="settings">The configured anchors (their counts, resize and thresholds are kept).</param>
    /// <param name="boxes">The ground truth.</param>
    /// <param name="maxSearchBoxes">Boxes scored per candidate. Default 30 000.</param>
    /// <param name="progress">Called with (candidates tried, candidates planned).</param>
    /// <exception cref="ArgumentException"><paramref name="settings"/> is invalid, or there are no boxes.</exception>
    public static AnchorFitResult Fit(AnchorSettings settings, AnchorBoxSet boxes, int maxSearchBoxes = 30_000, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(boxes);
        settings.Validate();
        if (boxes.BoxCount == 0) throw new ArgumentException("there are no boxes to fit anchors to", nameof(boxes));
        var sample = boxes.Subsample(Math.Max(1, maxSearchBoxes));
        int s = settings.Sizes[0].Length, r = settings.AspectRatios.Length;
        double[] bases = [.. Enumerable.Range(-12, 19).Select(k => 32 * Math.Pow(2, k / 6.0))];
        double[] steps = s == 1 ? [0] : [.. new[] { 0.5, 0.75, 1.0, 1.25, 1.5 }.Select(f => f / s)];
        double[] spreads = r == 1 ? [0] : [0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3];
        int planned = bases.Length * steps.Length * spreads.Length + 2 * 5 * 4, tried = 0;
        double Score(AnchorSettings c)
        {
            var res = AnchorCoverageAnalysis.Analyze(c, sample);
            progress?.Invoke(++tried, planned);
            return res.Overall.PositiveFraction + 1e-3 * res.Overall.MeanBestIou;
        }
        AnchorSettings bestSettings = settings;
        double bestScore = Score(settings);
        (double B, double Step, double Q) bestParams = (double.NaN, 0, 0);
        foreach (var b in bases)
            foreach (var step in steps)
                foreach (var q in spreads)
                {
                    var c = Make(settings, b, step, q, [0, 0, 0, 0, 0]);
                    if (c is null) continue;
                    double sc = Score(c);
                    if (sc > bestScore) { bestScore = sc; bestSettings = c; bestParams = (b, step, q); }
                }
        if (!double.IsNaN(bestParams.B))
        {
            var offsets = new double[5];
            for (int round = 0; round < 2; round++)
                for (int l = 0; l < 5; l++)
                    foreach (var d in new[] { -0.25, -0.125, 0.125, 0.25 })
                    {
                        var trial = (double[])offsets.Clone();
                        trial[l] += d;
                        var c = Make(settings, bestParams.B, bestParams.Step, bestParams.Q, trial);
                        if (c is null) continue;
                        double sc = Score(c);
                        if (sc > bestScore) { bestScore = sc; bestSettings = c; offsets = trial; }
                    }
        }
        var before = AnchorCoverageAnalysis.Analyze(settings, boxes);
        var after = ReferenceEquals(bestSettings, settings) ? before : AnchorCoverageAnalysis.Analyze(bestSettings, boxes);
        if (after.Overall.Positive < before.Overall.Positive) after = before;   // the subsample misled the search
        return new AnchorFitResult(before, after, tried);
    }

    /// <summary>Sizes b·2^(l + offset_l)·2^(j·step) rounded to pixels (null when two sizes of a level coincide), ratios 2^(linspace(-q, q, R)).</summary>
    private static AnchorSettings? Make(AnchorSettings template, double b, double step, double q, double[] levelOffsets)
    {
        int s = template.Sizes[0].Length, r = template.AspectRatios.Length;
        var sizes = new int[5][];
        for (int l = 0; l < 5; l++)
        {
            sizes[l] = [.. Enumerable.Range(0, s).Select(j => Math.Max(1, (int)Math.Round(b * Math.Pow(2, l + levelOffsets[l] + j * step))))];
            if (sizes[l].Distinct().Count() != s) return null;
        }
        double[] ratios = r == 1 ? [1.0] : [.. Enumerable.Range(0, r).Select(i => Math.Round(Math.Pow(2, -q + 2 * q * i / (r - 1)), 4))];
        return template with { Sizes = sizes, AspectRatios = ratios };
    }
}
