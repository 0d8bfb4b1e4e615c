// Settings of the HTML evaluation report: its title and the size budget of the embedded image thumbnails.
namespace RetinaSharp.Reporting;

/// <summary>Options of <see cref="EvaluationReport.Write"/>.</summary>
public sealed record EvaluationReportOptions
{
    /// <summary>The page title.</summary>
    public string Title { get; init; } = "Detection evaluation";

    /// <summary>What was evaluated (a model, a results file), shown under the title.</summary>
    public string Source { get; init; } = "";

    /// <summary>Budget for all embedded thumbnails (base64 text), bytes: 150 MB keeps a 5000-image report under about
    /// 200 MB with its detections. Each image gets an equal share; smaller, lower-quality thumbnails are used to fit.</summary>
    public long ThumbnailBudgetBytes { get; init; } = 150_000_000;

    /// <summary>Largest thumbnail side, pixels (images are never enlarged).</summary>
    public int ThumbnailMaxSide { get; init; } = 384;

    /// <summary>JPEG quality of the largest thumbnails (1-100).</summary>
    public int JpegQuality { get; init; } = 80;
}
