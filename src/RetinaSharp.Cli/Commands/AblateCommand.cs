// `retina ablate`: the paper's Table 1 (Lin et al. 2017) in miniature on the demo scenes. Parses the options, says the
// budget up front, shows the progress of each cell with Spectre.Console and prints where the table is; the work is
// RetinaSharp.Ablation.AblationRunner.
using System.CommandLine;
using System.Globalization;
using RetinaSharp.Ablation;
using RetinaSharp.Training;
using Spectre.Console;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina ablate`.</summary>
public static class AblateCommand
{
    /// <summary>Builds the `ablate` command.</summary>
    public static Command Create()
    {
        var outDir = new Option<string>("--out") { Description = "Output folder (scenes/, cells/<cell>/, table.md, table.json, ablation.png); a re-run into it skips the finished cells", DefaultValueFactory = _ => Path.Combine("runs", "ablate") };
        var quick = new Option<bool>("--quick") { Description = $"A smoke run ({AblationOptions.QuickIterations} iterations per cell on 32 small scenes, well under two minutes): checks that every file is written; the numbers mean nothing" };
        var minutes = new Option<double?>("--minutes-per-cell") { Description = "Training minutes per cell, turned once into one iteration count for every cell by timing a few steps here [default: none; the iterations below]" };
        var iterations = new Option<long?>("--iterations") { Description = $"Iterations of every cell [default: {AblationOptions.DefaultIterations}, sized for {AblationOptions.DefaultTotalMinutes:0} minutes in all on a quiet 2-core CPU; with --quick: {AblationOptions.QuickIterations}; a re-run keeps those of the cells in --out]" };
        var cells = new Option<string>("--cells") { Description = "Sub-tables to run, comma-separated: a (CE, alpha .25/.5/.75), b (FL, gamma 0/.5/1/2/5 with the paper's alpha), c (prior 0.01 against zero bias, CE and FL), d (anchors 1x1 against 3x3); shared cells are trained once", DefaultValueFactory = _ => "a,b,c,d" };
        var redo = new Option<bool>("--redo-changed") { Description = "Train again the cells in --out whose stored configuration differs from the one asked for (without it they are refused, never mixed in)" };
        var seed = new Option<int>("--seed") { Description = "Seed of the scenes, the initialisation and the data order, the same for every cell", DefaultValueFactory = _ => 0 };
        var command = new Command("ablate", "The paper's Table 1 in miniature: CE alpha, FL gamma, prior initialisation and anchors, each cell trained on the demo scenes with the same iterations and seed; writes table.md, table.json and ablation.png.");
        foreach (var o in new Option[] { outDir, quick, minutes, iterations, cells, redo, seed }) command.Options.Add(o);
        command.SetAction(p =>
        {
            var d = AblationOptions.Defaults(Path.GetFullPath(p.GetValue(outDir)!), p.GetValue(quick)) with
            {
                MinutesPerCell = p.GetValue(minutes), Iterations = p.GetValue(iterations), Tables = PaperTable1.ParseTables(p.GetValue(cells)!),
                RedoChanged = p.GetValue(redo), Seed = p.GetValue(seed),
            };
            return Run(d);
        });
        return command;
    }

    /// <summary>Runs the ablation; returns the exit code (0 when the table is written; 130/143 after Ctrl-C / SIGTERM).</summary>
    /// <exception cref="ArgumentException">Bad options, an unusable --out, or cells of another configuration in it.</exception>
    internal static int Run(AblationOptions options)
    {
        options.Validate();
        CliApp.EnsureOutFolder(options.OutputFolder);
        var runner = new AblationRunner(options) { Message = m => AnsiConsole.MarkupLineInterpolated($"[grey]{m}[/]") };
        var plan = runner.Prepare();
        foreach (var line in BudgetLines(options, plan)) AnsiConsole.MarkupLineInterpolated($"{line}");

        using var stop = TrainCommand.NewStopSignal();
        stop.Arm();
        AblationRunResult result;
        try
        {
            result = AnsiConsole.Profile.Capabilities.Interactive ? RunInteractive(runner, plan, stop.Token) : RunPlain(runner, plan, stop.Token);
        }
        finally
        {
            stop.Disarm();
        }
        if (!result.Completed)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]{result.Message}[/]");
            return stop.ExitCode ?? CliApp.Failed;
        }
        AnsiConsole.WriteLine();
        foreach (var t in PaperTable1.Tables.Where(t => options.Tables.Contains(t.Table)))
        {
            var row = string.Join(", ", PaperTable1.Rows.Where(r => r.Table == t.Table).Select(r =>
                string.Create(CultureInfo.InvariantCulture, $"{string.Join(" ", r.Settings)}: {100 * Math.Max(0, result.Results[r.CellId].Stats.Ap):0.0}")));
            AnsiConsole.MarkupLineInterpolated($"{t.Title}: AP {row}");
        }
        AnsiConsole.MarkupLineInterpolated($"[bold green]{result.Message}[/] Table: [bold]{Path.Combine(options.OutputFolder, AblationTableWriter.MarkdownFileName)}[/] (and {AblationTableWriter.JsonFileName}, {Visualization.AblationPlot.FileName}).");
        return CliApp.Ok;
    }

    /// <summary>The lines printed before any training: the cells, the iterations and where they come from, what is skipped, and the time budget.</summary>
    internal static IReadOnlyList<string> BudgetLines(AblationOptions options, AblationPlan plan)
    {
        var inv = CultureInfo.InvariantCulture;
        var recipe = options.BaseRecipe;
        var lines = new List<string>
        {
            $"The paper's Table 1 in miniature{(options.Quick ? " (quick smoke run)" : "")}: sub-tables {string.Join(", ", options.Tables.Select(t => t.ToString().ToLowerInvariant()))}, " +
            $"{Plural.Of(plan.Cells.Count, "cell")} of {Plural.Of(plan.Iterations, "iteration")} each ({plan.IterationsSource}); batch {recipe.BatchSize}, {plan.Train.Images.Count} scenes of {options.Size} px, " +
            $"ImageNet ResNet-18-FPN (the demo's recipe), seed {options.Seed}; AP on {plan.Val.Images.Count} validation scenes.",
        };
        int finished = plan.Cells.Count(c => c.State == AblationCellState.Finished), resumed = plan.Cells.Count(c => c.State == AblationCellState.Resume);
        var redo = plan.Cells.Where(c => c.State == AblationCellState.Redo).ToList();
        if (finished + resumed + redo.Count > 0)
            lines.Add($"In {options.OutputFolder}: {finished} finished {(finished == 1 ? "cell is" : "cells are")} skipped, {resumed} interrupted {(resumed == 1 ? "one continues" : "ones continue")}" +
                (redo.Count > 0 ? $", {redo.Count} changed {(redo.Count == 1 ? "one is" : "ones are")} trained again ({string.Join("; ", redo.Select(c => $"{c.Cell.Id}: {string.Join(", ", c.ChangedFields)}"))})" : "") + ".");
        int toTrain = plan.ToTrain.Count;
        if (toTrain == 0) lines.Add("Every cell is finished: writing the table.");
        else if (plan.SecondsPerStep is double s)
        {
            double perCell = plan.Iterations * s / 60;
            lines.Add(string.Create(inv, $"Budget: one step takes {s:0.00} s here, so about {perCell:0.0} minutes of training per cell and {perCell * toTrain:0.#} minutes for the {Plural.Of(toTrain, "cell")} to train, ") +
                $"plus a few seconds of evaluation on {plan.Val.Images.Count} scenes per cell (the default of {AblationOptions.DefaultIterations} iterations is sized for {AblationOptions.DefaultTotalMinutes:0} minutes in all on a quiet 2-core CPU). Ctrl-C stops with a checkpoint; the same command continues.");
        }
        else lines.Add($"{Plural.Of(toTrain, "cell")} to train. Ctrl-C stops with a checkpoint; the same command continues.");
        return lines;
    }

    private static AblationRunResult RunPlain(AblationRunner runner, AblationPlan plan, CancellationToken token)
    {
        string current = "";
        runner.CellStarted = (c, i, n) =>
        {
            current = $"cell {i + 1}/{n} {c.Cell.Id}";
            Console.WriteLine($"{current}: {c.Cell.Label}{(c.State == AblationCellState.Resume ? " (continuing)" : "")}");
        };
        long every = Math.Max(1, plan.Iterations / 10);
        runner.Progress = p =>
        {
            if (p.Iteration % every == 0 || p.Iteration == p.TotalIterations) Console.WriteLine($"{current}: {TrainCommand.Describe(p)}");
        };
        runner.Evaluating = c => Console.WriteLine($"{current}: evaluating on {plan.Val.Images.Count} validation scenes...");
        runner.CellFinished = r => Console.WriteLine(CellLine(r));
        return runner.Run(plan, token);
    }

    private static AblationRunResult RunInteractive(AblationRunner runner, AblationPlan plan, CancellationToken token)
    {
        AblationRunResult? result = null;
        var toTrain = plan.ToTrain;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var all = ctx.AddTask($"{Plural.Of(toTrain.Count, "cell")} to train", maxValue: Math.Max(1, toTrain.Count * plan.Iterations));
                ProgressTask? cellTask = null;
                long before = 0;
                runner.CellStarted = (c, i, n) =>
                {
                    cellTask?.StopTask();
                    before = i * plan.Iterations;
                    cellTask = ctx.AddTask(Markup.Escape($"cell {i + 1}/{n} {c.Cell.Id}"), maxValue: plan.Iterations);
                };
                runner.Progress = p =>
                {
                    if (cellTask is null) return;
                    cellTask.Value = p.Iteration;
                    cellTask.Description = Markup.Escape($"{TrainCommand.Describe(p)}");
                    all.Value = before + p.Iteration;
                };
                runner.Evaluating = c => { if (cellTask != null) cellTask.Description = Markup.Escape($"{c.Id}: evaluating on {plan.Val.Images.Count} validation scenes..."); };
                runner.CellFinished = r =>
                {
                    if (cellTask != null) { cellTask.Description = Markup.Escape(CellLine(r)); cellTask.StopTask(); }
                };
                result = runner.Run(plan, token);
                all.StopTask();
            });
        return result!;
    }

    private static string CellLine(AblationCellResult r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.CellId}: AP {100 * Math.Max(0, r.Stats.Ap):0.0}, AP50 {100 * Math.Max(0, r.Stats.Ap50):0.0}, AP75 {100 * Math.Max(0, r.Stats.Ap75):0.0}" +
        $"{(r.Status == AblationCellStatus.Diverged ? $" (diverged at iteration {r.Iterations})" : "")}, {r.SkippedSteps} skipped steps, {r.TrainingSeconds:0} s training");
}
