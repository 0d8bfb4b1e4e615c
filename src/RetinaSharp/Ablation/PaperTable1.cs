// The paper's ablations and their published numbers: Lin et al. 2017, "Focal Loss for Dense Object Detection"
// (arXiv 1708.02002), Table 1 a-c ("All models are trained on trainval35k and tested on minival ... ResNet-50-FPN
// backbone; and a 600 pixel train and test image scale"; defaults γ = 2, 3 scales x 3 aspect ratios) and the text of
// section 3.3 / 5.1 on the prior initialisation (plain CE without it "fails quickly, with the network diverging";
// with π = .01, CE reaches 30.2 AP, the α = .5 row of Table 1a). Numbers are COCO AP in percent as printed.
namespace RetinaSharp.Ablation;

/// <summary>The sub-tables of the miniature Table 1 (<c>--cells a,b,c,d</c>).</summary>
public enum AblationTable
{
    /// <summary>(a) α-balanced cross entropy (γ = 0) for α in {0.25, 0.5, 0.75}: paper Table 1a.</summary>
    A,
    /// <summary>(b) focal loss for γ in {0, 0.5, 1, 2, 5} with the paper's α for each: paper Table 1b.</summary>
    B,
    /// <summary>(c) prior π = 0.01 against a zero classification bias, for CE and FL: paper sections 3.3 and 5.1.</summary>
    C,
    /// <summary>(d) anchors: 1 scale x 1 ratio against 3 x 3: paper Table 1c.</summary>
    D,
}

/// <summary>A published number set for one cell (COCO minival, ResNet-50-FPN, 600 px), or the paper's words where it gives none.</summary>
/// <param name="Ap">AP in percent, or null.</param>
/// <param name="Ap50">AP50 in percent, or null.</param>
/// <param name="Ap75">AP75 in percent, or null.</param>
/// <param name="Source">Where in the paper (for example "Table 1b"), or what it says instead of numbers ("diverged (section 5.1)").</param>
public sealed record PaperNumbers(double? Ap, double? Ap50, double? Ap75, string Source);

/// <summary>One row of a sub-table: its settings as printed, the cell that measures it and the paper's numbers.</summary>
/// <param name="Table">The sub-table.</param>
/// <param name="Settings">The values of the sub-table's <see cref="AblationTableDefinition.SettingColumns"/>.</param>
/// <param name="CellId">The <see cref="AblationCell.Id"/> trained for this row (shared between rows of equal configuration).</param>
/// <param name="Paper">The paper's numbers for the same setting.</param>
/// <param name="ShortLabel">The row in a few characters, for the picture (for example "γ=2 α=.25").</param>
public sealed record AblationRow(AblationTable Table, IReadOnlyList<string> Settings, string CellId, PaperNumbers Paper, string ShortLabel);

/// <summary>A sub-table's title, its setting columns and its paper source.</summary>
/// <param name="Table">Which sub-table.</param>
/// <param name="Title">A heading, for example "(a) α-balanced cross entropy (γ = 0)".</param>
/// <param name="SettingColumns">The headers of the columns that say what a row varies.</param>
/// <param name="PaperSource">Where the paper's numbers are.</param>
public sealed record AblationTableDefinition(AblationTable Table, string Title, IReadOnlyList<string> SettingColumns, string PaperSource);

/// <summary>The cells and rows of the miniature Table 1, with the paper's numbers.</summary>
public static class PaperTable1
{
    /// <summary>What the paper's numbers were measured on, for every table that shows them.</summary>
    public const string PaperSetting = "COCO minival (trained on trainval35k), ResNet-50-FPN, 600 px train and test scale, 90k iterations of 16 images";

    private static AblationCell Ce(double alpha, double prior = AblationCell.PaperPrior) =>
        new($"ce-a{F(alpha)}{(prior == AblationCell.ZeroBiasPrior ? "-zero-bias" : "")}", alpha, 0, prior, AnchorGrid.ThreeScalesThreeRatios);

    private static AblationCell Fl(double gamma, double alpha, double prior = AblationCell.PaperPrior, AnchorGrid anchors = AnchorGrid.ThreeScalesThreeRatios) =>
        new($"fl-g{F(gamma)}-a{F(alpha)}{(prior == AblationCell.ZeroBiasPrior ? "-zero-bias" : "")}{(anchors == AnchorGrid.OneScaleOneRatio ? "-anchors1x1" : "")}",
            alpha, gamma, prior, anchors);

    private static string F(double v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The paper's defaults: FL γ = 2, α = .25, π = .01, 3 x 3 anchors (shared by b, c and d).</summary>
    public static AblationCell Baseline { get; } = Fl(2, 0.25);

    /// <summary>Every cell, each configuration once, in training order (table a, then what b, c and d add).</summary>
    public static IReadOnlyList<AblationCell> Cells { get; } =
    [
        Ce(0.25), Ce(0.5), Ce(0.75),
        Fl(0.5, 0.5), Fl(1, 0.25), Baseline, Fl(5, 0.25),
        Ce(0.5, AblationCell.ZeroBiasPrior), Fl(2, 0.25, AblationCell.ZeroBiasPrior),
        Fl(2, 0.25, anchors: AnchorGrid.OneScaleOneRatio),
    ];

    /// <summary>The four sub-tables.</summary>
    public static IReadOnlyList<AblationTableDefinition> Tables { get; } =
    [
        new(AblationTable.A, "(a) α-balanced cross entropy (γ = 0)", ["α"], "Table 1a"),
        new(AblationTable.B, "(b) focal loss, γ with the paper's α for it", ["γ", "α"], "Table 1b"),
        new(AblationTable.C, "(c) prior π = 0.01 against a zero classification bias", ["loss", "bias at the start"], "sections 3.3 and 5.1 (Table 1a/1b rows with the prior)"),
        new(AblationTable.D, "(d) anchors per location", ["scales x ratios", "anchors per location"], "Table 1c"),
    ];

    /// <summary>Every row of every sub-table.</summary>
    public static IReadOnlyList<AblationRow> Rows { get; } =
    [
        new(AblationTable.A, [".25"], "ce-a0.25", new(10.8, 16.0, 11.7, "Table 1a"), "α=.25"),
        new(AblationTable.A, [".5"], "ce-a0.5", new(30.2, 46.7, 32.8, "Table 1a"), "α=.5"),
        new(AblationTable.A, [".75"], "ce-a0.75", new(31.1, 49.4, 33.0, "Table 1a"), "α=.75"),

        new(AblationTable.B, ["0", ".75"], "ce-a0.75", new(31.1, 49.4, 33.0, "Table 1b"), "γ=0 α=.75"),
        new(AblationTable.B, ["0.5", ".5"], "fl-g0.5-a0.5", new(32.9, 51.7, 35.2, "Table 1b"), "γ=.5 α=.5"),
        new(AblationTable.B, ["1", ".25"], "fl-g1-a0.25", new(33.7, 52.0, 36.2, "Table 1b"), "γ=1 α=.25"),
        new(AblationTable.B, ["2", ".25"], "fl-g2-a0.25", new(34.0, 52.5, 36.5, "Table 1b"), "γ=2 α=.25"),
        new(AblationTable.B, ["5", ".25"], "fl-g5-a0.25", new(32.2, 49.6, 34.8, "Table 1b"), "γ=5 α=.25"),

        new(AblationTable.C, ["CE (α = .5)", "prior π = .01"], "ce-a0.5", new(30.2, 46.7, 32.8, "section 5.1: 30.2 AP; Table 1a α = .5"), "CE, π=.01"),
        new(AblationTable.C, ["CE (α = .5)", "zero (π = .5)"], "ce-a0.5-zero-bias", new(null, null, null, "diverged (section 5.1: plain CE without the prior \"fails quickly, with the network diverging\")"), "CE, zero bias"),
        new(AblationTable.C, ["FL (γ = 2, α = .25)", "prior π = .01"], "fl-g2-a0.25", new(34.0, 52.5, 36.5, "Table 1b"), "FL, π=.01"),
        new(AblationTable.C, ["FL (γ = 2, α = .25)", "zero (π = .5)"], "fl-g2-a0.25-zero-bias", new(null, null, null, "not reported (section 3.3: the prior improves stability for CE and FL)"), "FL, zero bias"),

        new(AblationTable.D, ["1 x 1", "1"], "fl-g2-a0.25-anchors1x1", new(30.3, 49.0, 31.8, "Table 1c"), "1x1 anchors"),
        new(AblationTable.D, ["3 x 3", "9"], "fl-g2-a0.25", new(34.0, 52.5, 36.5, "Table 1c"), "3x3 anchors"),
    ];

    /// <summary>The cell with <paramref name="id"/>.</summary>
    /// <exception cref="ArgumentException">No such cell.</exception>
    public static AblationCell Cell(string id) =>
        Cells.FirstOrDefault(c => c.Id == id) ?? throw new ArgumentException($"no ablation cell '{id}' (known: {string.Join(", ", Cells.Select(c => c.Id))})", nameof(id));

    /// <summary>The cells the rows of <paramref name="tables"/> need, each once, in <see cref="Cells"/> order.</summary>
    public static IReadOnlyList<AblationCell> CellsFor(IEnumerable<AblationTable> tables)
    {
        var set = tables.ToHashSet();
        var ids = Rows.Where(r => set.Contains(r.Table)).Select(r => r.CellId).ToHashSet();
        return [.. Cells.Where(c => ids.Contains(c.Id))];
    }

    /// <summary>Parses <c>--cells</c>: comma-separated letters a, b, c, d (any case, any order, repeats ignored).</summary>
    /// <exception cref="ArgumentException">An empty list or an unknown letter; the message names <c>--cells</c>.</exception>
    public static IReadOnlyList<AblationTable> ParseTables(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException($"--cells '{spec}': give one or more of a, b, c, d separated by commas.");
        var tables = new SortedSet<AblationTable>();
        foreach (var p in parts)
            tables.Add(p.ToLowerInvariant() switch
            {
                "a" => AblationTable.A, "b" => AblationTable.B, "c" => AblationTable.C, "d" => AblationTable.D,
                _ => throw new ArgumentException($"--cells '{spec}': unknown sub-table '{p}'; the sub-tables are a (CE α), b (FL γ), c (prior) and d (anchors)."),
            });
        return [.. tables];
    }
}
