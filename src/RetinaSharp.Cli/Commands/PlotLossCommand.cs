// `retina plot-loss`: the loss curves of several training runs in one picture (for example `retina demo` from ImageNet
// weights against `retina demo --from-scratch`). Reads each run's log.csv (Training.TrainingLog.ReadCsv) and draws them
// with Visualization.LossCurvePlot.WriteComparison.
using System.CommandLine;
using RetinaSharp.Training;
using RetinaSharp.Visualization;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina plot-loss --out loss.png [LABEL=]RUN...`.</summary>
public static class PlotLossCommand
{
    /// <summary>Builds the `plot-loss` command.</summary>
    public static Command Create()
    {
        var runs = new Argument<string[]>("runs")
        {
            HelpName = "[LABEL=]RUN",
            Description = "Training runs: a log.csv, a folder holding one, or a demo folder (its train/log.csv); LABEL= names the curve [default: the folder's name]",
            Arity = ArgumentArity.OneOrMore,
        };
        var outFile = new Option<string>("--out") { HelpName = "loss.png", Description = "The picture to write (PNG)", Required = true };
        var command = new Command("plot-loss", "Draw the training loss of several runs in one picture (log scale).");
        command.Arguments.Add(runs);
        command.Options.Add(outFile);
        command.SetAction(p =>
        {
            var logs = p.GetValue(runs)!.Select(Read).ToList();
            string target = Path.GetFullPath(p.GetValue(outFile)!);
            if (Path.GetDirectoryName(target) is string folder) CliApp.EnsureOutFolder(folder, "--out");
            LossCurvePlot.WriteComparison(logs, target);
            foreach (var (label, log) in logs)
                p.InvocationConfiguration.Output.WriteLine($"{label}: {log.Steps.Count} logged steps, last loss {log.Steps.LastOrDefault()?.Loss:0.###}");
            p.InvocationConfiguration.Output.WriteLine($"wrote {target}");
            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>The label and log of one argument: [LABEL=]PATH, PATH a log.csv, a folder with log.csv, or one with train/log.csv.</summary>
    /// <exception cref="IO.DataFormatException">No log.csv there, it is not a training log, or it has no logged steps.</exception>
    internal static (string Label, TrainingLog Log) Read(string argument)
    {
        int eq = argument.IndexOf('=');
        string? label = eq > 0 ? argument[..eq] : null;
        string path = Path.GetFullPath(eq >= 0 ? argument[(eq + 1)..] : argument); // "=PATH": no label given
        string csv = File.Exists(path) ? path
            : File.Exists(Path.Combine(path, "log.csv")) ? Path.Combine(path, "log.csv")
            : File.Exists(Path.Combine(path, "train", "log.csv")) ? Path.Combine(path, "train", "log.csv")
            : Path.Combine(path, "log.csv");
        label ??= Path.GetFileName(Path.GetDirectoryName(csv) is string d && Path.GetFileName(d) == "train" ? Path.GetDirectoryName(d) : Path.GetDirectoryName(csv));
        var log = TrainingLog.ReadCsv(csv);
        if (log.Steps.Count == 0) throw new IO.DataFormatException(csv, null, null, "no logged steps (only the header): nothing to draw");
        return (label ?? csv, log);
    }
}
