// What the ONNX tests share, built once per test run (exporting a detector and creating an ONNX Runtime session cost
// seconds each): Fashion-MNIST scenes, the small demo-like model, its dynamic opset-17 export with head outputs and one
// session on it, and a folder with model.rsnet, the scenes as PNG files, a COCO instances.json and the `retina export`
// of the checkpoint (built on first use).
using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.Export;
using RetinaSharp.Modeling;
using RetinaSharp.Serving;
using RetinaSharp.Tests.Data;
using RetinaSharp.Tests.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Export;

/// <summary>The xunit collection of every ONNX test: they run one after another and share one <see cref="OnnxFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class OnnxCollection : ICollectionFixture<OnnxFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "ONNX export";
}

/// <summary>One export, one session and one checkpoint folder for all ONNX tests.</summary>
public sealed class OnnxFixture : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Lazy<string> _checkpoint;
    private readonly Lazy<(int Code, string Error, string Path)> _cliExport;

    public OnnxFixture()
    {
        var set = FashionMnistSet.Load();
        var (_, val) = FashionScenes.SplitGlyphs(set.Count, 0);
        var options = new FashionScenesOptions("unused", Size: 128, Seed: 0);
        var a = FashionScenes.Compose(set, val, options, new Random(11)).Image;
        var b = FashionScenes.Compose(set, val, options, new Random(12)).Image;
        var wide = new byte[128 * 256 * 3];
        for (int y = 0; y < 128; y++)
        {
            Array.Copy(a.Pixels, y * 128 * 3, wide, y * 256 * 3, 128 * 3);
            Array.Copy(b.Pixels, y * 128 * 3, wide, y * 256 * 3 + 128 * 3, 128 * 3);
        }
        // Three more 128x128 scenes for the folder tests (detect, eval): five files in all.
        var more = Enumerable.Range(13, 3).Select(seed => FashionScenes.Compose(set, val, options, new Random(seed)).Image);
        Images = [a, new RgbImage(wide, 256, 128), .. more];
        Model = SmallModel();
        DynamicOnnx = _dir["dynamic17.onnx"];
        OnnxExporter.Export(Model, DynamicOnnx, new OnnxExportOptions { Opset = 17, HeadOutputs = true });
        Detector = new OnnxRuntimeDetector(DynamicOnnx, new OnnxRuntimeDetectorOptions { Device = OnnxDevice.Cpu });
        _checkpoint = new Lazy<string>(WriteCheckpointFolder);
        _cliExport = new Lazy<(int, string, string)>(() =>
        {
            string onnx = System.IO.Path.Combine(CheckpointFolder, "out", "model.onnx");
            var (code, error) = Run("export", "--weights", Checkpoint, "--onnx", onnx, "--opset", "13");
            return (code, error, onnx);
        });
    }

    /// <summary>Scenes of real Fashion-MNIST photographs: 128x128, 256 wide x 128 high (two scenes side by side), then three more 128x128.</summary>
    public RgbImage[] Images { get; }

    /// <summary><see cref="SmallModel"/> (score threshold 0.05), prepared NCHW.</summary>
    public RetinaNet Model { get; }

    /// <summary><see cref="Model"/> exported with a dynamic input size, opset 17, head outputs included.</summary>
    public string DynamicOnnx { get; }

    /// <summary>A CPU session on <see cref="DynamicOnnx"/>.</summary>
    public OnnxRuntimeDetector Detector { get; }

    /// <summary>The folder of <see cref="Checkpoint"/>: <c>images/scene{i}.png</c> (the <see cref="Images"/>), <c>instances.json</c>.</summary>
    public string CheckpointFolder => System.IO.Path.GetDirectoryName(Checkpoint)!;

    /// <summary><see cref="Model"/> saved as model.rsnet with the ten Fashion-MNIST class names.</summary>
    public string Checkpoint => _checkpoint.Value;

    /// <summary>The scene files, in file order (image ids 1..N of <c>retina detect</c>).</summary>
    public string[] SceneFiles => [.. Enumerable.Range(0, Images.Length).Select(i => System.IO.Path.Combine(CheckpointFolder, "images", $"scene{i}.png"))];

    /// <summary><c>retina export --weights model.rsnet --onnx out/model.onnx --opset 13</c>: exit code, error output, the file.</summary>
    public (int Code, string Error, string Path) CliExport => _cliExport.Value;

    /// <summary>The demo's architecture, small: ResNet-18, trainable BatchNorm, GroupNorm heads; deterministic weights.</summary>
    internal static RetinaNet SmallModel(double scoreThreshold = 0.05)
    {
        var model = new RetinaNet(new RetinaNetOptions(10)
        {
            Backbone = ResNetDepth.ResNet18, BackboneNorm = BackboneNormKind.BatchNorm, HeadGroupNorm = true, FpnChannels = 64,
            MinSize = 128, MaxSize = 200, ScoreThreshold = scoreThreshold,
        });
        using var noGrad = no_grad();
        foreach (var (key, t) in model.state_dict())
        {
            if (key.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            var (scale, offset) = DeterministicWeights.KindScaleOffset(key, t.shape);
            using var src = tensor(DeterministicWeights.Values(key, t.shape, scale, offset)).reshape(t.shape);
            t.copy_(src);
        }
        model.PrepareForInference(channelsLast: false);
        return model;
    }

    /// <summary>Runs the `retina` commands export, detect and eval in-process: exit code and error output.</summary>
    internal static (int Code, string Error) Run(params string[] args)
    {
        var (code, _, error) = RunWithOutput(args);
        return (code, error);
    }

    /// <summary>As <see cref="Run"/>, with the standard output too.</summary>
    internal static (int Code, string Output, string Error) RunWithOutput(params string[] args)
    {
        var root = new RootCommand { ExportCommand.Create(), DetectCommand.Create(), EvalCommand.Create() };
        var (output, err) = (new StringWriter(), new StringWriter());
        int code = CliApp.Invoke(root, args, output, err);
        return (code, output.ToString(), err.ToString());
    }

    /// <summary>
    /// TorchSharp's detections (<c>RetinaNet.Detect</c>, NCHW) of the scene files as COCO results, the way <c>retina detect</c>
    /// numbers them: image ids 1..N in file order, category id = label + 1, XYWH, scores at least <paramref name="minScore"/>.
    /// </summary>
    internal List<CocoResult> TorchSharpResults(double minScore = 0.05)
    {
        var categories = new CategoryMap(Categories);
        var results = new List<CocoResult>();
        var files = SceneFiles;
        for (int i = 0; i < files.Length; i++)
        {
            using var scope = NewDisposeScope();
            var found = Model.Detect([ImageIO.ToTensor(ImageIO.Load(files[i]))])[0];
            results.AddRange(RetinaSharp.Training.DetectionValidation.ToCoco(found, i + 1, categories).Where(r => r.Score >= minScore));
        }
        return results;
    }

    /// <summary>The ten Fashion-MNIST classes as COCO categories 1..10.</summary>
    internal static IReadOnlyList<CocoCategory> Categories { get; } =
        [.. Enumerable.Range(0, 10).Select(i => new CocoCategory(i + 1, FashionMnistSet.ClassNames[i]))];

    private string WriteCheckpointFolder()
    {
        string dir = _dir["checkpoint"];
        Directory.CreateDirectory(System.IO.Path.Combine(dir, "images"));
        string path = System.IO.Path.Combine(dir, "model.rsnet");
        RetinaNetCheckpoint.Save(Model, path, Categories);
        for (int i = 0; i < Images.Length; i++) ImageIO.SavePng(Images[i], System.IO.Path.Combine(dir, "images", $"scene{i}.png"));
        return path;
    }

    public void Dispose()
    {
        Detector.Dispose();
        Model.Dispose();
        _dir.Dispose();
    }
}
