// `retina export`: writes a trained detector for another runtime. --onnx: one ONNX graph (RetinaSharp.Export.OnnxExporter:
// preprocessing, network, anchors, decoding and NMS inside), for ONNX Runtime and other ONNX engines. --torchvision: a
// torchvision 0.14 state_dict (.pth) and a JSON of the constructor arguments beside it (RetinaSharp.Export.TorchvisionExport;
// recipe in docs/scale-out.md).
using System.CommandLine;
using System.Globalization;
using RetinaSharp.Export;
using RetinaSharp.Modeling;
using Spectre.Console;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina export --weights W [--onnx model.onnx [--opset N] [--size HxW | --dynamic]] [--torchvision out.pth [--out-json out.json]]`.</summary>
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
        var command = new Command("export", "Export a trained RetinaNet: to ONNX, NMS included (run it with ONNX Runtime: retina detect --engine onnxruntime), or to a torchvision state_dict.");
        foreach (var o in new Option[] { weights, onnx, opset, size, dynamic, torchvisionPth, outJson, numClasses }) command.Options.Add(o);
        command.SetAction(p =>
        {
            if (p.GetValue(onnx) is null && p.GetValue(torchvisionPth) is null)
                throw new ArgumentException("retina export: give a target, --onnx model.onnx or --torchvision out.pth (or both).");
            if (p.GetValue(torchvisionPth) is string pthTarget)
            {
                RunTorchvision(p.GetValue(weights)!, pthTarget, p.GetValue(outJson), p.InvocationConfiguration.Output);
                if (p.GetValue(onnx) is null) return CliApp.Ok;
            }
            var options = new OnnxExportOptions { Opset = p.GetValue(opset), FixedSize = ParseSize(p.GetValue(size), p.GetValue(dynamic)) };
            if (options.Opset is < OnnxExportOptions.MinOpset or > OnnxExportOptions.MaxOpset)
                throw new ArgumentException($"--opset {options.Opset}: the exporter writes opsets {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}.");
            string weightsPath = Path.GetFullPath(p.GetValue(weights)!);
            string target = Path.GetFullPath(p.GetValue(onnx)!);
            if (Directory.Exists(target)) throw new ArgumentException($"--onnx '{target}' is a folder; give a file name such as model.onnx.");
            string? folder = Path.GetDirectoryName(target);
            if (folder != null) CliApp.EnsureOutFolder(folder, "--onnx");
            using var model = RetinaNetCheckpoint.Load(weightsPath);
            if (p.GetValue(numClasses) is int k && k != model.Options.NumClasses)
                throw new ArgumentException($"--num-classes {k}: the weights in '{p.GetValue(weights)}' have {Plural.Of(model.Options.NumClasses, "class")}.");
            var stored = RetinaNetCheckpoint.ReadCategories(weightsPath);
            options = options with { Categories = stored != null && stored.Count == model.Options.NumClasses ? stored : null };
            var sw = System.Diagnostics.Stopwatch.StartNew();
            OnnxExporter.Export(model, target, options);
            var mo = model.Options;
            string input = options.FixedSize is { } s ? $"3x{s.Height}x{s.Width}" : "3xHxW (any size)";
            string names = options.Categories is null ? ", unnamed" : "";
            double mb = new FileInfo(target).Length / 1e6, seconds = sw.Elapsed.TotalSeconds;
            AnsiConsole.MarkupLineInterpolated(
                $"Exported {mo.Backbone}-FPN RetinaNet ({Plural.Of(mo.NumClasses, "class")}{names}) -> [bold]{target}[/] ({mb:0.0} MB, opset {options.Opset}, input {input}, {seconds:0.0} s)");
            AnsiConsole.MarkupLineInterpolated($"[grey]Inside: resize to {mo.MinSize}/{mo.MaxSize}, score > {mo.ScoreThreshold.ToString(CultureInfo.InvariantCulture)}, top {mo.TopkCandidates} per level, NMS {mo.NmsThreshold.ToString(CultureInfo.InvariantCulture)}, best {mo.DetectionsPerImage}; outputs boxes (N, 4) XYXY pixels, scores (N), labels (N).[/]");
            return CliApp.Ok;
        });
        return command;
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
