// The two ways `retina detect` and `retina eval` run a detector: TorchSharp (RetinaNet.Detect) or ONNX Runtime
// (RetinaSharp.Serving.OnnxRuntimeDetector on an exported .onnx file, or on the model exported in memory).
using System.Globalization;
using System.CommandLine;
using RetinaSharp.Data;
using RetinaSharp.Export;
using RetinaSharp.Modeling;
using RetinaSharp.Serving;
using static TorchSharp.torch;

namespace RetinaSharp.Cli;

/// <summary>A loaded detector behind one <see cref="Detect"/> call, whichever engine runs it.</summary>
internal sealed class InferenceEngine : IDisposable
{
    /// <summary>The value of <c>--engine</c> for TorchSharp (the default).</summary>
    public const string TorchSharp = "torchsharp";
    /// <summary>The value of <c>--engine</c> for ONNX Runtime.</summary>
    public const string OnnxRuntime = "onnxruntime";

    private readonly RetinaNet? _model;
    private readonly OnnxRuntimeDetector? _onnx;
    private double? _minScore;   // an .onnx file run with a higher --score-threshold than built in: filtered here

    private InferenceEngine(RetinaNet? model, OnnxRuntimeDetector? onnx, RetinaNetOptions options, IReadOnlyList<CocoCategory>? categories, string description)
    {
        _model = model;
        _onnx = onnx;
        Options = options;
        StoredCategories = categories;
        Description = description;
    }

    /// <summary>The `--engine` option.</summary>
    public static Option<string> CreateOption() => new("--engine")
    {
        Description = $"What runs the model: {TorchSharp} (libtorch) or {OnnxRuntime} (ONNX Runtime, an .onnx file from retina export or --weights exported on the fly)",
        DefaultValueFactory = _ => TorchSharp,
        CustomParser = r => r.Tokens.Count == 1 ? r.Tokens[0].Value.ToLowerInvariant() : TorchSharp,
    };

    /// <summary>The options the detector runs with (for ONNX files: those it was exported with).</summary>
    public RetinaNetOptions Options { get; }

    /// <summary>Class names stored with the weights (model.rsnet or the .onnx metadata), or null.</summary>
    public IReadOnlyList<CocoCategory>? StoredCategories { get; }

    /// <summary>A line for people: which engine and device runs.</summary>
    public string Description { get; }

    /// <summary>Detections of each image (boxes in that image's pixels), each as if detected alone (<see cref="RetinaNet.DetectIndependently"/>).</summary>
    public IReadOnlyList<Detections> Detect(IReadOnlyList<Tensor> images)
    {
        if (_model != null) return _model.DetectIndependently(images);
        var found = _onnx!.Detect(images);
        if (_minScore is not double t) return found;
        using var threshold = global::TorchSharp.ScalarExtensionMethods.ToScalar(t); // explicit and alive for every call (issue 17)
        return [.. found.Select(d =>
        {
            using var keep = d.Scores.gt(threshold);
            return new Detections(d.Boxes[keep], d.Scores[keep], d.Labels[keep]);
        })];
    }

    /// <summary>
    /// Loads <paramref name="weightsPath"/> for <paramref name="engine"/>. TorchSharp: the checkpoint, reconfigured by
    /// <paramref name="configure"/> and prepared for inference. ONNX Runtime: an .onnx file as exported (options that
    /// <paramref name="configure"/> would change are refused, naming the option), or a checkpoint, reconfigured and
    /// exported in memory (dynamic size, opset 17).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown engine, --bf16 with ONNX Runtime, or an option an .onnx file cannot change.</exception>
    public static InferenceEngine Open(string engine, string weightsPath, Func<RetinaNetOptions, RetinaNetOptions> configure, bool bfloat16,
        Func<string, RetinaNet> loadCheckpoint, TorchSharp.torch.Device? device = null)
    {
        if (engine is not (TorchSharp or OnnxRuntime))
            throw new ArgumentException($"--engine '{engine}': expected {TorchSharp} or {OnnxRuntime}.");
        if (engine == OnnxRuntime && bfloat16)
            throw new ArgumentException($"--bf16: applies to --engine {TorchSharp} only (ONNX Runtime runs the graph as exported: float32, or int8 from retina export --int8).");
        bool onnxFile = weightsPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);
        if (onnxFile && engine != OnnxRuntime)
            throw new ArgumentException($"--weights '{weightsPath}' is an ONNX file: add --engine {OnnxRuntime}.");
        if (onnxFile)
        {
            var detector = new OnnxRuntimeDetector(weightsPath);
            try
            {
                var built = detector.ModelOptions;
                var wanted = configure(built);
                void Same<T>(string option, T a, T b)
                {
                    if (!EqualityComparer<T>.Default.Equals(a, b))
                        throw new ArgumentException($"{option} {Show(b)}: the ONNX file '{weightsPath}' has {Show(a)} built in (retina export takes them from model.rsnet); give model.rsnet instead, which is exported on the fly with your setting (float32).");
                }
                Same("--min-size", built.MinSize, wanted.MinSize);
                Same("--max-size", built.MaxSize, wanted.MaxSize);
                Same("--max-detections", built.DetectionsPerImage, wanted.DetectionsPerImage);
                if (wanted.ScoreThreshold < built.ScoreThreshold) Same("--score-threshold", built.ScoreThreshold, wanted.ScoreThreshold);
                return new InferenceEngine(null, detector, built, detector.Categories, $"ONNX Runtime on {detector.DeviceNote}, {(detector.IsInt8 ? "int8" : "float32")}, {Path.GetFileName(weightsPath)}")
                {
                    _minScore = wanted.ScoreThreshold > built.ScoreThreshold ? wanted.ScoreThreshold : null,
                };
            }
            catch
            {
                detector.Dispose();
                throw;
            }
        }
        RetinaNet? model = loadCheckpoint(weightsPath);
        try
        {
            model.Reconfigure(configure(model.Options));
            var categories = RetinaNetCheckpoint.ReadCategories(weightsPath);
            if (categories != null && categories.Count != model.Options.NumClasses) categories = null;
            if (engine == TorchSharp)
            {
                if (device != null) global::TorchSharp.ModuleExtensionMethods.to(model, device); // --device: before the folded copies are made beside the parameters
                model.PrepareForInference(foldBatchNorm: true, bfloat16: bfloat16, channelsLast: true);
                return new InferenceEngine(model, null, model.Options, categories, $"TorchSharp on the CPU{(bfloat16 ? ", bfloat16" : "")}");
            }
            var bytes = OnnxExporter.ToBytes(model, new OnnxExportOptions { Categories = categories });
            var options = model.Options;
            model.Dispose();
            model = null;
            var onnx = new OnnxRuntimeDetector(bytes, weightsPath);
            return new InferenceEngine(null, onnx, options, categories, $"ONNX Runtime on {onnx.DeviceNote}, float32, exported in memory");
        }
        catch
        {
            model?.Dispose();
            throw;
        }
    }

    private static string Show<T>(T v) => v is double d ? d.ToString(CultureInfo.InvariantCulture) : v?.ToString() ?? "";

    /// <summary>Releases the model or the ONNX Runtime session.</summary>
    public void Dispose()
    {
        _model?.Dispose();
        _onnx?.Dispose();
    }
}
