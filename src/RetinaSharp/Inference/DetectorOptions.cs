// Settings of the convenience Detector; every value left null keeps what the model file stores (the paper's inference
// defaults for a torchvision .pth: score > 0.05, 100 detections, 800/1333 resize).
using RetinaSharp.Data;

namespace RetinaSharp.Inference;

/// <summary>How a <see cref="Detector"/> runs. Null keeps the model's own setting.</summary>
public sealed record DetectorOptions
{
    /// <summary>Keep detections scoring above this, in [0, 1) [default: the model's, 0.05 as in the paper's evaluation].</summary>
    public double? ScoreThreshold { get; init; }

    /// <summary>Detections kept per image (&gt;= 1) [default: the model's, 100].</summary>
    public int? MaxDetections { get; init; }

    /// <summary>Shorter image side after resize, pixels [default: the model's].</summary>
    public int? MinSize { get; init; }

    /// <summary>Longer image side limit, pixels [default: the model's, at least <see cref="MinSize"/>].</summary>
    public int? MaxSize { get; init; }

    /// <summary>Run the network in bfloat16 (about 1.7x faster on CPUs with AVX512-BF16; COCO AP within 0.03 points of
    /// float32 on the demo, docs/benchmarks.md). Default false.</summary>
    public bool BFloat16 { get; init; }

    /// <summary>Where the network runs: "cpu", "cuda" or "cuda:N" (<see cref="ComputeDevice.Resolve"/>). Default "cpu".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Images read per step by the batch overloads of <see cref="Detector.Detect(IEnumerable{string})"/> (&gt;= 1). Default 4.
    /// Those of them with the same padded size share a forward pass (<see cref="Modeling.RetinaNet.DetectIndependently"/>), so an
    /// image's detections never depend on the batch.</summary>
    public int BatchSize { get; init; } = 4;

    /// <summary>Class names and ids, one per model class in class-index order [default: those stored in model.rsnet; else "class i" with id i].</summary>
    public IReadOnlyList<CocoCategory>? Categories { get; init; }
}
