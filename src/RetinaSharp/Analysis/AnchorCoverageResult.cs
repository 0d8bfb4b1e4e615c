// Per-box anchor coverage and its summaries: overall, by COCO size (small < 32², medium < 96², large; box area in
// original pixels, as the COCO evaluation's area ranges), by the box side in the training frame (finer octave bins),
// and by aspect ratio (height / width, octave bins centred on 1/8 .. 8).
using System.Text.Json;
using RetinaSharp.IO;

namespace RetinaSharp.Analysis;

/// <summary>Counts of one group of boxes.</summary>
/// <param name="Name">The group, for example "small" or "h/w≈1/2".</param>
/// <param name="Boxes">Boxes in the group.</param>
/// <param name="Positive">Boxes with an anchor of IoU ≥ fg.</param>
/// <param name="IgnoredOnly">Boxes whose best anchor IoU is in [bg, fg).</param>
/// <param name="None">Boxes whose best anchor IoU is below bg.</param>
/// <param name="MeanPositives">Mean number of positive anchors per box of the group (0 when empty).</param>
/// <param name="MeanBestIou">Mean best anchor IoU (0 when empty).</param>
public sealed record AnchorCoverageBin(string Name, int Boxes, int Positive, int IgnoredOnly, int None, double MeanPositives, double MeanBestIou)
{
    /// <summary>Positive / Boxes (0 when empty).</summary>
    public double PositiveFraction => Boxes == 0 ? 0 : (double)Positive / Boxes;
    /// <summary>IgnoredOnly / Boxes (0 when empty).</summary>
    public double IgnoredOnlyFraction => Boxes == 0 ? 0 : (double)IgnoredOnly / Boxes;
    /// <summary>None / Boxes (0 when empty).</summary>
    public double NoneFraction => Boxes == 0 ? 0 : (double)None / Boxes;
}

/// <summary>The result of <see cref="AnchorCoverageAnalysis.Analyze"/>.</summary>
public sealed class AnchorCoverageResult
{
    private readonly double[] _best, _cocoArea, _trainingSide, _aspect;
    private readonly int[] _positives;
    private readonly sbyte[] _level;

    /// <summary>COCO area bins (original pixels²): small &lt; 32², medium &lt; 96², large.</summary>
    public static readonly (string Name, double Lo, double Hi)[] CocoSizeBins =
        [("small", 0, 32 * 32), ("medium", 32 * 32, 96 * 96), ("large", 96 * 96, double.PositiveInfinity)];

    /// <summary>Bins of the box side sqrt(w·h) in the training frame (pixels after the resize).</summary>
    public static readonly (string Name, double Lo, double Hi)[] TrainingSizeBins =
        [("<16", 0, 16), ("16-32", 16, 32), ("32-64", 32, 64), ("64-128", 64, 128), ("128-256", 128, 256), ("256-512", 256, 512), (">=512", 512, double.PositiveInfinity)];

    /// <summary>Aspect-ratio bins (height / width): h/w in [2^(k-½), 2^(k+½)) for k = -3..3, the outer two open-ended.</summary>
    public static readonly (string Name, double Lo, double Hi)[] AspectBins =
        [.. Enumerable.Range(-3, 7).Select(k => (k == 0 ? "h/w≈1" : k < 0 ? $"h/w≈1/{1 << -k}" : $"h/w≈{1 << k}",
            k == -3 ? 0 : Math.Pow(2, k - 0.5), k == 3 ? double.PositiveInfinity : Math.Pow(2, k + 0.5)))];

    internal AnchorCoverageResult(AnchorSettings settings, int images, int emptyImages, double[] best, int[] positives, sbyte[] level,
        double[] cocoArea, double[] trainingSide, double[] aspect)
    {
        Settings = settings; ImageCount = images; EmptyImageCount = emptyImages;
        _best = best; _positives = positives; _level = level; _cocoArea = cocoArea; _trainingSide = trainingSide; _aspect = aspect;
        Overall = Bin("all", _ => true);
        BySize = [.. CocoSizeBins.Select(r => Bin(r.Name, b => _cocoArea[b] >= r.Lo && _cocoArea[b] < r.Hi))];
        ByTrainingSize = [.. TrainingSizeBins.Select(r => Bin(r.Name, b => _trainingSide[b] >= r.Lo && _trainingSide[b] < r.Hi))];
        ByAspectRatio = [.. AspectBins.Select(r => Bin(r.Name, b => _aspect[b] >= r.Lo && _aspect[b] < r.Hi))];
    }

    /// <summary>The settings analysed.</summary>
    public AnchorSettings Settings { get; }
    /// <summary>Images analysed (empty ones included).</summary>
    public int ImageCount { get; }
    /// <summary>Images without boxes.</summary>
    public int EmptyImageCount { get; }
    /// <summary>Boxes analysed.</summary>
    public int BoxCount => _best.Length;
    /// <summary>All boxes.</summary>
    public AnchorCoverageBin Overall { get; }
    /// <summary>By COCO size (<see cref="CocoSizeBins"/>).</summary>
    public IReadOnlyList<AnchorCoverageBin> BySize { get; }
    /// <summary>By box side in the training frame (<see cref="TrainingSizeBins"/>).</summary>
    public IReadOnlyList<AnchorCoverageBin> ByTrainingSize { get; }
    /// <summary>By aspect ratio (<see cref="AspectBins"/>).</summary>
    public IReadOnlyList<AnchorCoverageBin> ByAspectRatio { get; }

    /// <summary>The best anchor IoU of box <paramref name="box"/> (order of the <see cref="AnchorBoxSet"/>).</summary>
    public double BestIou(int box) => _best[box];
    /// <summary>The number of anchors with IoU ≥ fg of box <paramref name="box"/>.</summary>
    public int Positives(int box) => _positives[box];
    /// <summary>The pyramid level (0 = P3 … 4 = P7) of the best anchor of box <paramref name="box"/>, or -1 when no anchor overlaps it.</summary>
    public int BestLevel(int box) => _level[box];
    /// <summary>What the matcher can do for box <paramref name="box"/>.</summary>
    public AnchorMatchKind Kind(int box) =>
        _best[box] >= Settings.FgIouThreshold ? AnchorMatchKind.Positive : _best[box] >= Settings.BgIouThreshold ? AnchorMatchKind.IgnoredOnly : AnchorMatchKind.None;

    /// <summary>Boxes per number of positive anchors: index k &lt; last counts boxes with exactly k, the last one boxes with at least that many.</summary>
    /// <param name="last">The open-ended last bucket. Default 10.</param>
    public int[] PositivesHistogram(int last = 10)
    {
        var h = new int[last + 1];
        foreach (var p in _positives) h[Math.Min(p, last)]++;
        return h;
    }

    /// <summary>Boxes per best-IoU bin of width 1 / <paramref name="bins"/> over [0, 1] (IoU 1 in the last bin).</summary>
    public int[] BestIouHistogram(int bins = 20)
    {
        var h = new int[bins];
        foreach (var v in _best) h[Math.Clamp((int)(v * bins), 0, bins - 1)]++;
        return h;
    }

    private AnchorCoverageBin Bin(string name, Func<int, bool> member)
    {
        int boxes = 0, pos = 0, ign = 0, none = 0;
        double sumPos = 0, sumIou = 0;
        for (int b = 0; b < _best.Length; b++)
        {
            if (!member(b)) continue;
            boxes++; sumPos += _positives[b]; sumIou += _best[b];
            switch (Kind(b)) { case AnchorMatchKind.Positive: pos++; break; case AnchorMatchKind.IgnoredOnly: ign++; break; default: none++; break; }
        }
        return new AnchorCoverageBin(name, boxes, pos, ign, none, boxes == 0 ? 0 : sumPos / boxes, boxes == 0 ? 0 : sumIou / boxes);
    }

    /// <summary>Writes the summaries as JSON (atomically): settings, counts, bins, histograms.</summary>
    /// <param name="path">The file.</param>
    /// <param name="source">The dataset, for the record.</param>
    /// <param name="fitted">With --fit: the fitted settings' result, written under "fitted".</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void WriteJson(string path, string source, AnchorCoverageResult? fitted = null) => AtomicFile.Write(path, stream =>
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("dataset", source);
        w.WritePropertyName("configured");
        WriteBody(w);
        if (fitted != null)
        {
            w.WritePropertyName("fitted");
            fitted.WriteBody(w);
        }
        w.WriteEndObject();
    });

    private void WriteBody(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WritePropertyName("anchors");
        AnchorFile.WriteSettings(w, Settings);
        w.WriteNumber("images", ImageCount);
        w.WriteNumber("emptyImages", EmptyImageCount);
        w.WriteNumber("boxes", BoxCount);
        w.WritePropertyName("overall"); WriteBin(w, Overall);
        void Group(string name, IReadOnlyList<AnchorCoverageBin> bins)
        {
            w.WriteStartArray(name);
            foreach (var b in bins) WriteBin(w, b);
            w.WriteEndArray();
        }
        Group("bySize", BySize);
        Group("byTrainingSize", ByTrainingSize);
        Group("byAspectRatio", ByAspectRatio);
        w.WriteStartArray("positivesPerBox");
        foreach (var c in PositivesHistogram()) w.WriteNumberValue(c);
        w.WriteEndArray();
        w.WriteStartArray("bestIouHistogram");
        foreach (var c in BestIouHistogram()) w.WriteNumberValue(c);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteBin(Utf8JsonWriter w, AnchorCoverageBin b)
    {
        w.WriteStartObject();
        w.WriteString("name", b.Name);
        w.WriteNumber("boxes", b.Boxes);
        w.WriteNumber("positive", b.Positive);
        w.WriteNumber("ignoredOnly", b.IgnoredOnly);
        w.WriteNumber("none", b.None);
        w.WriteNumber("positiveFraction", Math.Round(b.PositiveFraction, 6));
        w.WriteNumber("meanPositives", Math.Round(b.MeanPositives, 4));
        w.WriteNumber("meanBestIou", Math.Round(b.MeanBestIou, 6));
        w.WriteEndObject();
    }
}
