// `retina export`: writes a trained detector for another runtime. --onnx: one ONNX graph (RetinaSharp.Export.OnnxExporter:
// preprocessing, network, anchors, decoding and NMS inside), for ONNX Runtime and other ONNX engines. --torchvision: a
// torchvision 0.14 state_dict (.pth) and a JSON of the constructor arguments beside it (RetinaSharp.Export.TorchvisionExport;
// recipe in docs/scale-out.md).
using System.CommandLine;
using System.Globalization;
using RetinaSharp.Data;
using RetinaSharp.Export;
using RetinaSharp.Modeling;
using RetinaSharp.Quantization;
using Spectre.Console;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina export --weights W [--onnx model.onnx [--opset N] [--size HxW | --dynamic] [--int8 --calibration DATASET]] [--torchvision out.pth [--out-json out.json]]`.</summary>
public static class ExportCommand
{
    /// <summary>Builds the `export` command.</summary>
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { HelpName = "model", Description = "Model: model.rsnet from retina train or a torchvision .pth", Required = true };
        var onnx = new Option<string>("--onnx") { HelpName = "model.onnx", Description = "Write the whole detector (resize, network, anchors, decoding, NMS) as this ONNX file" };
        var opset = new Option<int>("--opset")
        {
            Description = $"ONNX opset, {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}",
            DefaultValueFactory = _ => new OnnxExportOptions().Opset,
        };
        var size = new Option<string?>("--size") { HelpName = "HxW", Description = "Build the graph for input images of exactly H x W pixels (sizes and anchors become constants)" };
        var dynamic = new Option<bool>("--dynamic") { Description = "Build the graph for images of any size (the default)" };
        var torchvisionPth = new Option<string?>("--torchvision") { HelpName = "out.pth", Description = "Write a torchvision 0.14 RetinaNet state_dict (loads with strict=True) and its constructor arguments as JSON beside it (to train on with PyTorch DDP, see docs/scale-out.md)" };
        var outJson = new Option<string?>("--out-json") { HelpName = "out.json", Description = "Where --torchvision writes the constructor-arguments JSON [default: the .pth path with .json]" };
        var numClasses = new Option<int?>("--num-classes") { Description = "Classes of a .pth checkpoint [default: inferred from its weights]" };
        var int8 = new Option<bool>("--int8") { Description = "Quantise the ONNX graph to int8 (static, QDQ: uint8 activations with ranges measured on --calibration, int8 weights per output channel; ONNX Runtime runs QLinearConv, VNNI where the CPU has it; opset 13+)" };
        var calibration = new Option<string?>("--calibration") { HelpName = "images", Description = "With --int8: images like those the model will serve, to measure the activation ranges on: a dataset (COCO .json, VOC folder, .csv; its training set will do), a folder of images or a glob" };
        var calibrationImages = new Option<int>("--calibration-images") { Description = "With --int8: how many images of --calibration to use (spread evenly over it)", DefaultValueFactory = _ => DefaultCalibrationImages };
        var command = new Command("export", "Export a trained RetinaNet: to ONNX, NMS included (run it with ONNX Runtime: retina detect --engine onnxruntime), or to a torchvision state_dict.");
        foreach (var o in new Option[] { weights, onnx, opset, size, dynamic, int8, calibration, calibrationImages, torchvisionPth, outJson, numClasses }) command.Options.Add(o);
        command.SetAction(p =>
        {
            string? onnxTarget = p.GetValue(onnx), pthTarget = p.GetValue(torchvisionPth);
            if (onnxTarget is null && pthTarget is null)
                throw new ArgumentException("retina export: give a target, --onnx model.onnx or --torchvision out.pth (or both).");
            bool quantise = p.GetValue(int8);
            string? calibrationPath = p.GetValue(calibration);
            int calibrationCount = p.GetValue(calibrationImages);
            if (quantise && onnxTarget is null) throw new ArgumentException("--int8 quantises the ONNX graph: give --onnx model.onnx too.");
            if (quantise && calibrationPath is null)
                throw new ArgumentException("--int8 needs --calibration IMAGES: a dataset, a folder of images or a glob like those the model will serve (its training set will do), to measure the activation ranges on.");
            if (!quantise && calibrationPath is not null) throw new ArgumentException($"--calibration {calibrationPath}: only used with --int8; add --int8 or leave it out.");
            if (!quantise && p.GetResult(calibrationImages) is { Implicit: false })
                throw new ArgumentException($"--calibration-images {calibrationCount}: only used with --int8; add --int8 --calibration IMAGES or leave it out.");
            if (calibrationCount < 1) throw new ArgumentException($"--calibration-images {calibrationCount}: must be at least 1.");
            string weightsPath = Path.GetFullPath(p.GetValue(weights)!);
            if (onnxTarget is null)
                return RunTorchvision(weightsPath, pthTarget!, p.GetValue(outJson), p.InvocationConfiguration.Output);

            // Every check of the ONNX target before anything is written, then the ONNX file, then the torchvision one.
            var options = new OnnxExportOptions { Opset = p.GetValue(opset), FixedSize = ParseSize(p.GetValue(size), p.GetValue(dynamic)) };
            if (options.Opset is < OnnxExportOptions.MinOpset or > OnnxExportOptions.MaxOpset)
                throw new ArgumentException($"--opset {options.Opset}: the exporter writes opsets {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}.");
            if (quantise && options.Opset < OnnxExportOptions.MinInt8Opset)
                throw new ArgumentException($"--opset {options.Opset} with --int8: an int8 graph needs opset {OnnxExportOptions.MinInt8Opset} or newer (per-channel DequantizeLinear).");
            var calibrationFiles = calibrationPath is null ? null : CalibrationFiles(calibrationPath);   // bad data fails before the model loads
            string target = Path.GetFullPath(onnxTarget);
            if (Directory.Exists(target)) throw new ArgumentException($"--onnx '{target}' is a folder; give a file name such as model.onnx.");
            if (string.Equals(target, weightsPath, StringComparison.Ordinal))
                throw new ArgumentException($"--onnx {target}: that is the --weights file; give another name such as model.onnx.");
            if (pthTarget is not null && (string.Equals(target, Path.GetFullPath(pthTarget), StringComparison.Ordinal) ||
                                          string.Equals(target, Path.GetFullPath(p.GetValue(outJson) ?? Path.ChangeExtension(pthTarget, ".json")), StringComparison.Ordinal)))
                throw new ArgumentException($"--onnx {target}: --torchvision writes that file too; give the two targets different names.");
            if (calibrationFiles is not null && calibrationFiles.Any(f => string.Equals(Path.GetFullPath(f), target, StringComparison.Ordinal)))
                throw new ArgumentException($"--onnx {target}: that is one of the --calibration images; write the model elsewhere.");
            string? folder = Path.GetDirectoryName(target);
            if (folder != null) CliApp.EnsureOutFolder(folder, "--onnx");
            ExportOnnx(weightsPath, target, options, calibrationFiles, calibrationPath, calibrationCount, p.GetValue(numClasses), p.GetValue(weights)!, p.InvocationConfiguration.Error);
            return pthTarget is null ? CliApp.Ok : RunTorchvision(weightsPath, pthTarget, p.GetValue(outJson), p.InvocationConfiguration.Output);
        });
        return command;
    }

    /// <summary>Loads the weights, calibrates when asked, writes the ONNX file and prints what it holds.</summary>
    private static void ExportOnnx(string weightsPath, string target, OnnxExportOptions options, IReadOnlyList<string>? calibrationFiles, string? calibrationPath,
        int calibrationCount, int? numClasses, string weightsArgument, TextWriter progressWriter)
    {
        using var model = RetinaNetCheckpoint.Load(weightsPath);
        if (numClasses is int k && k != model.Options.NumClasses)
            throw new ArgumentException($"--num-classes {k}: the weights in '{weightsArgument}' have {Plural.Of(model.Options.NumClasses, "class")}.");
        var stored = RetinaNetCheckpoint.ReadCategories(weightsPath);
        options = options with { Categories = stored != null && stored.Count == model.Options.NumClasses ? stored : null };
        var sw = System.Diagnostics.Stopwatch.StartNew();
        if (calibrationFiles is not null)
        {
            options = options with { Int8 = Calibrate(model, calibrationFiles, calibrationCount, progressWriter) };
            string fewer = options.Int8.Images < calibrationCount ? $", all it has (fewer than the {calibrationCount} asked for)" : "";
            AnsiConsole.MarkupLineInterpolated($"[grey]Calibrated {Plural.Of(options.Int8.Ranges.Count, "activation")} on {Plural.Of(options.Int8.Images, "image")} of {calibrationPath}{fewer} ({sw.Elapsed.TotalSeconds:0.0} s).[/]");
        }
        OnnxExporter.Export(model, target, options);
        var mo = model.Options;
        string input = options.FixedSize is { } s ? $"3x{s.Height}x{s.Width}" : "3xHxW (any size)";
        string names = options.Categories is null ? ", unnamed" : "";
        double mb = new FileInfo(target).Length / 1e6, seconds = sw.Elapsed.TotalSeconds;
        string precision = options.Int8 is null ? "float32" : "int8";
        AnsiConsole.MarkupLineInterpolated(
            $"Exported {mo.Backbone}-FPN RetinaNet ({Plural.Of(mo.NumClasses, "class")}{names}) -> [bold]{target}[/] ({mb:0.0} MB, {precision}, opset {options.Opset}, input {input}, {seconds:0.0} s)");
        AnsiConsole.MarkupLineInterpolated($"[grey]Inside: resize to {mo.MinSize}/{mo.MaxSize}, score > {mo.ScoreThreshold.ToString(CultureInfo.InvariantCulture)}, top {mo.TopkCandidates} per level, NMS {mo.NmsThreshold.ToString(CultureInfo.InvariantCulture)}, best {mo.DetectionsPerImage}; outputs boxes (N, 4) XYXY pixels, scores (N), labels (N).[/]");
    }

    /// <summary>Calibration images used by --int8 when --calibration-images is not given.</summary>
    internal const int DefaultCalibrationImages = 64;

    /// <summary>The image files of --calibration: a dataset's images (COCO .json, VOC folder with Annotations/, .csv), or
    /// image files, a folder of images or a glob (as <c>retina detect</c> reads them).</summary>
    /// <exception cref="RetinaSharp.IO.DataFormatException">A dataset file that cannot be read (file, record, field).</exception>
    /// <exception cref="ArgumentException">No images found.</exception>
    internal static IReadOnlyList<string> CalibrationFiles(string path)
    {
        string full = Path.GetFullPath(path);
        bool dataset = File.Exists(full) ? Path.GetExtension(full).ToLowerInvariant() is ".json" or ".csv" : Directory.Exists(Path.Combine(full, "Annotations"));
        List<string> files;
        try { files = dataset ? [.. DetectionDataset.Load(full).Images.Select(im => im.FilePath)] : DetectCommand.ExpandInputs([path]); }
        catch (FileNotFoundException e) { throw new ArgumentException($"--calibration {path}: {e.Message}", e); }
        if (files.Count == 0) throw new ArgumentException($"--calibration {path}: no images found (give a dataset, a folder of images or a glob).");
        return files;
    }

    /// <summary>Measures the activation ranges of <paramref name="model"/> on <paramref name="count"/> of
    /// <paramref name="files"/>, spread evenly over them (all of them when there are fewer), with a progress count.</summary>
    /// <exception cref="RetinaSharp.IO.DataFormatException">An image cannot be read (the message names the file).</exception>
    internal static Int8Calibration Calibrate(RetinaNet model, IReadOnlyList<string> files, int count, TextWriter progressWriter)
    {
        int n = Math.Min(count, files.Count);
        var chosen = Enumerable.Range(0, n).Select(i => files[(int)((long)i * files.Count / n)]).ToList();
        var progress = new CountProgress(progressWriter, "calibrating int8", n, "images");
        var tensors = chosen.Select(f => ImageIO.ToTensor(ImageIO.Load(f)));
        var result = Int8Calibrator.Calibrate(model, Disposing(tensors), progress: progress.Report);
        progress.Finish();
        return result;
    }

    /// <summary>Yields each tensor and disposes it once the consumer moves on.</summary>
    private static IEnumerable<TorchSharp.torch.Tensor> Disposing(IEnumerable<TorchSharp.torch.Tensor> tensors)
    {
        foreach (var t in tensors)
        {
            try { yield return t; }
            finally { t.Dispose(); }
        }
    }

    /// <summary>Exports <paramref name="weightsPath"/> to <paramref name="pthPath"/> (+ JSON) and prints both paths.</summary>
    /// <returns><see cref="CliApp.Ok"/>.</returns>
    /// <exception cref="ArgumentException">torchvision cannot hold the model (the message names the option), or the two outputs collide.</exception>
    /// <exception cref="RetinaSharp.IO.DataFormatException">The weights file is missing or unreadable.</exception>
    public static int RunTorchvision(string weightsPath, string pthPath, string? jsonPath, TextWriter output)
    {
        string src = Path.GetFullPath(weightsPath);
        string pth = Path.GetFullPath(pthPath);
        string json = Path.GetFullPath(jsonPath ?? Path.ChangeExtension(pthPath, ".json"));
        if (string.Equals(pth, json, StringComparison.Ordinal))
            throw new ArgumentException($"--out-json {json}: must differ from the --torchvision file");
        using var model = RetinaNetCheckpoint.Load(src);
        var categories = RetinaNetCheckpoint.ReadCategories(src);
        try { TorchvisionExport.Export(model, pth, json, categories); }
        catch (NotSupportedException e) { throw new ArgumentException($"--torchvision: {e.Message}", e); }
        output.WriteLine($"wrote {pth} (torchvision state_dict, {model.Options.Backbone} RetinaNet, {Plural.Of(model.Options.NumClasses, "class")})");
        output.WriteLine($"wrote {json} (constructor arguments; load with scripts/torchvision_roundtrip.py or see docs/scale-out.md)");
        return CliApp.Ok;
    }

    /// <summary>"HxW" to (H, W); null with --dynamic or neither.</summary>
    /// <exception cref="ArgumentException">Both --size and --dynamic, or a size that is not two positive integers.</exception>
    internal static (int Height, int Width)? ParseSize(string? size, bool dynamic)
    {
        if (size is null) return null;
        if (dynamic) throw new ArgumentException($"--size {size} and --dynamic: give one (a fixed input size, or any size).");
        var parts = size.Split('x', 'X');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int h) &&
            int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) && h > 0 && w > 0)
            return (h, w);
        throw new ArgumentException($"--size '{size}': expected HEIGHTxWIDTH in pixels, for example 800x1216.");
    }
}
