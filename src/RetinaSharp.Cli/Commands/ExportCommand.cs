// `retina export`: writes a trained model for another runtime. --torchvision: a torchvision 0.14 state_dict (.pth) and a
// JSON of the constructor arguments beside it (RetinaSharp.Export.TorchvisionExport; recipe in docs/scale-out.md).
using System.CommandLine;
using RetinaSharp.Export;
using RetinaSharp.Modeling;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina export --weights model.rsnet --torchvision out.pth [--out-json out.json]`.</summary>
public static class ExportCommand
{
    /// <summary>Builds the `export` command.</summary>
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { HelpName = "model", Required = true, Description = "Model to export: model.rsnet from retina train (or a torchvision .pth)" };
        var torchvisionPth = new Option<string?>("--torchvision") { HelpName = "out.pth", Description = "Write a torchvision 0.14 RetinaNet state_dict (loads with strict=True) and its constructor arguments as JSON beside it" };
        var outJson = new Option<string?>("--out-json") { HelpName = "out.json", Description = "Where to write the constructor-arguments JSON [default: the .pth path with .json]" };
        var command = new Command("export", "Export a trained RetinaNet for another runtime (torchvision: to train on with PyTorch DDP, see docs/scale-out.md)");
        foreach (var o in new Option[] { weights, torchvisionPth, outJson }) command.Options.Add(o);
        command.SetAction(p => Run(p.GetValue(weights)!, p.GetValue(torchvisionPth), p.GetValue(outJson), p.InvocationConfiguration.Output));
        return command;
    }

    /// <summary>Exports <paramref name="weightsPath"/> to <paramref name="pthPath"/> (+ JSON) and prints both paths.</summary>
    /// <returns><see cref="CliApp.Ok"/>.</returns>
    /// <exception cref="ArgumentException">No target given, or torchvision cannot hold the model (the message names the option).</exception>
    /// <exception cref="RetinaSharp.IO.DataFormatException">The weights file is missing or unreadable.</exception>
    public static int Run(string weightsPath, string? pthPath, string? jsonPath, TextWriter output)
    {
        if (string.IsNullOrEmpty(pthPath)) throw new ArgumentException("retina export: give a target, --torchvision out.pth");
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
}
