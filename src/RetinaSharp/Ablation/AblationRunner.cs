// `retina ablate`: the paper's Table 1 (Lin et al. 2017) in miniature on the demo's Fashion-MNIST scenes. Every cell is
// the demo recipe (TrainingRecipe.Demo, ImageNet ResNet-18-FPN) with one knob changed, trained by the one Trainer for the
// same iterations with the same seed, then scored with the pycocotools-exact CocoEvaluator. Resumable cell by cell:
// a finished cell's result.json is kept and skipped; an interrupted cell continues from its training checkpoint; a cell
// whose stored configuration differs from the one asked for is refused (or, asked to, trained again), never mixed in.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Training;
using RetinaSharp.Visualization;
using TorchSharp;

namespace RetinaSharp.Ablation;

/// <summary>What happens to a cell in a run.</summary>
public enum AblationCellState
{
    /// <summary>Finished earlier with the same configuration: skipped, its result is used.</summary>
    Finished,
    /// <summary>Started earlier with the same configuration and interrupted: continued from its checkpoint.</summary>
    Resume,
    /// <summary>Not started yet.</summary>
    New,
    /// <summary>Stored with another configuration and <see cref="AblationOptions.RedoChanged"/> given: its folder is removed and it is trained again.</summary>
    Redo,
}

/// <summary>One cell of a prepared run.</summary>
/// <param name="Cell">The cell.</param>
/// <param name="State">What the run does with it.</param>
/// <param name="Configuration">Its resolved configuration for this run.</param>
/// <param name="Result">The earlier result (<see cref="AblationCellState.Finished"/>), else null.</param>
/// <param name="ChangedFields">For <see cref="AblationCellState.Redo"/>: the configuration paths that differ from the stored ones.</param>
public sealed record AblationPlannedCell(AblationCell Cell, AblationCellState State, JsonObject Configuration, AblationCellResult? Result, IReadOnlyList<string> ChangedFields);

/// <summary>A run ready to start (<see cref="AblationRunner.Prepare"/>): the data, the iterations, and each cell's state.</summary>
/// <param name="Iterations">Iterations of every cell.</param>
/// <param name="IterationsSource">How they were chosen (for the line printed up front).</param>
/// <param name="SecondsPerStep">The measured step time on this machine, or null when not measured.</param>
/// <param name="Cells">The cells of the sub-tables asked for, in training order.</param>
/// <param name="Train">The training scenes.</param>
/// <param name="Val">The validation scenes (AP is measured on them).</param>
public sealed record AblationPlan(long Iterations, string IterationsSource, double? SecondsPerStep, IReadOnlyList<AblationPlannedCell> Cells,
    DetectionDataset Train, DetectionDataset Val)
{
    /// <summary>The cells still to train.</summary>
    public IReadOnlyList<AblationPlannedCell> ToTrain => [.. Cells.Where(c => c.State != AblationCellState.Finished)];
}

/// <summary>How a run ended.</summary>
/// <param name="Completed">Every cell finished and the table files were written.</param>
/// <param name="Message">What happened (for an interrupted run: how to continue).</param>
/// <param name="Results">The results of the finished cells, by cell id.</param>
/// <param name="Files">The files written (table.md, table.json, ablation.png) when completed.</param>
public sealed record AblationRunResult(bool Completed, string Message, IReadOnlyDictionary<string, AblationCellResult> Results, IReadOnlyList<string> Files);

/// <summary>Runs the ablation (<see cref="Prepare"/>, then <see cref="Run"/>); the callbacks report progress (the CLI draws it).</summary>
/// <param name="options">The settings.</param>
public sealed class AblationRunner(AblationOptions options)
{
    /// <summary>The settings.</summary>
    public AblationOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>Notices for the user (scenes built, cells skipped, trainer messages).</summary>
    public Action<string>? Message { get; set; }
    /// <summary>Called when a cell starts training: the cell, its 0-based position among the cells to train and their count.</summary>
    public Action<AblationPlannedCell, int, int>? CellStarted { get; set; }
    /// <summary>Called after every training step of the current cell.</summary>
    public Action<TrainingProgress>? Progress { get; set; }
    /// <summary>Called when the current cell's evaluation starts.</summary>
    public Action<AblationCell>? Evaluating { get; set; }
    /// <summary>Called when a cell has its result (written to disk).</summary>
    public Action<AblationCellResult>? CellFinished { get; set; }

    /// <summary>The table files written by a completed run, in DIR.</summary>
    public static IReadOnlyList<string> OutputFiles { get; } = [AblationTableWriter.MarkdownFileName, AblationTableWriter.JsonFileName, AblationPlot.FileName];

    /// <summary>
    /// Before any training: checks the options and the folder, builds the scenes once (DIR/scenes), chooses the iterations
    /// (<see cref="AblationOptions.Iterations"/>; else those of the cells already in DIR with the same data; else
    /// <see cref="AblationOptions.MinutesPerCell"/> converted by timing 3 steps here; else the default) and reads every cell
    /// already in DIR. With something to train and no quick run, also times 3 steps for the estimate printed up front.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range; or cells in DIR were made with another configuration and
    /// <see cref="AblationOptions.RedoChanged"/> is not set (the message lists each cell and field).</exception>
    /// <exception cref="DataFormatException">A stored result or configuration cannot be read.</exception>
    public AblationPlan Prepare()
    {
        Options.Validate();
        Directory.CreateDirectory(Options.OutputFolder);
        var scenes = Options.Scenes;
        if (FashionScenes.IsBuilt(scenes)) Message?.Invoke($"Using the scenes in {scenes.OutputFolder}.");
        else
        {
            Message?.Invoke($"Building {scenes.TrainImages} training and {scenes.ValImages} validation scenes of {scenes.Size}x{scenes.Size} px from Fashion-MNIST in {scenes.OutputFolder}...");
            FashionScenes.Build(scenes);
        }
        var train = DetectionDataset.Load(Path.Combine(scenes.OutputFolder, "instances_train.json"));
        var val = DetectionDataset.Load(Path.Combine(scenes.OutputFolder, "instances_val.json"));
        int k = train.Categories.Count;
        var cells = PaperTable1.CellsFor(Options.Tables);

        // What is in DIR already: a result (finished) or a configuration (started).
        var stored = cells.ToDictionary(c => c.Id, c => ReadStored(c.Id));
        double? perStep = null;
        long iterations;
        string source;
        if (Options.Iterations is long given) (iterations, source) = (given, "--iterations");
        else if (StoredIterations(stored.Values.Select(s => s.Configuration), cells, k) is long kept)
            (iterations, source) = (kept, $"those of the cells already in {Options.OutputFolder}" + (Options.MinutesPerCell != null ? " (--minutes-per-cell only sizes a new ablation)" : ""));
        else if (Options.MinutesPerCell is double minutes)
        {
            perStep = MeasureStep(train);
            iterations = Math.Max(1, (long)(minutes * 60 / perStep.Value));
            source = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"--minutes-per-cell {minutes:0.##} at {perStep:0.00} s a step measured here");
        }
        else if (Options.Quick) (iterations, source) = (AblationOptions.QuickIterations, "the quick run's");
        else (iterations, source) = (AblationOptions.DefaultIterations, $"the default, sized for {AblationOptions.DefaultTotalMinutes:0} minutes in all on a quiet 2-core CPU");

        var planned = new List<AblationPlannedCell>();
        var refused = new List<string>();
        foreach (var cell in cells)
        {
            var config = Options.Configuration(cell, iterations, k);
            var (result, storedConfig) = stored[cell.Id];
            if (storedConfig is null)
            {
                planned.Add(new(cell, AblationCellState.New, config, null, []));
                continue;
            }
            var diffs = AblationOptions.Differences(storedConfig, config);
            if (diffs.Count == 0)
                planned.Add(new(cell, result != null ? AblationCellState.Finished : AblationCellState.Resume, config, result, []));
            else if (Options.RedoChanged)
                planned.Add(new(cell, AblationCellState.Redo, config, null, diffs));
            else
                refused.Add($"{cell.Id} ({(result != null ? "finished" : "started")}): " + string.Join("; ", diffs.Select(d => $"{d} stored {Leaf(storedConfig, d)}, now {Leaf(config, d)}")));
        }
        if (refused.Count > 0)
            throw new ArgumentException($"--out '{Options.OutputFolder}' holds cells made with another configuration; they are not mixed into the table:\n  " +
                string.Join("\n  ", refused) + "\nGive --redo-changed to train those cells again with the configuration asked for, or give another --out.");
        if (perStep is null && !Options.Quick && planned.Any(c => c.State != AblationCellState.Finished)) perStep = MeasureStep(train);
        return new AblationPlan(iterations, source, perStep, planned, train, val);
    }

    /// <summary>
    /// Trains every cell of <paramref name="plan"/> that is not finished, in order; each finished cell writes its
    /// <c>result.json</c> (and drops its training checkpoint). When all are finished, writes table.md, table.json and
    /// ablation.png into DIR. Cancelling stops after the current step with a checkpoint of the cell (or before the next cell);
    /// a libtorch failure during a step stops the run the same way (<see cref="TrainingStatus.NativeFailure"/>). Either way the
    /// result is not <see cref="AblationRunResult.Completed"/>, its message says what happened, and the same run continues it.
    /// </summary>
    public AblationRunResult Run(AblationPlan plan, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var results = plan.Cells.Where(c => c.Result != null).ToDictionary(c => c.Cell.Id, c => c.Result!);
        var toTrain = plan.ToTrain;
        for (int i = 0; i < toTrain.Count; i++)
        {
            var planned = toTrain[i];
            if (cancellation.IsCancellationRequested)
                return new AblationRunResult(false, $"Stopped before cell {planned.Cell.Id}; run the same command again to continue.", results, []);
            CellStarted?.Invoke(planned, i, toTrain.Count);
            var (result, stop) = TrainCell(planned, plan, cancellation);
            if (result is null)
                return new AblationRunResult(false, stop!, results, []);
            results[planned.Cell.Id] = result;
            CellFinished?.Invoke(result);
        }
        var files = new List<string>();
        var tables = PaperTable1.Tables.Where(t => Options.Tables.Contains(t.Table)).ToList();
        var rows = PaperTable1.Rows.Where(r => Options.Tables.Contains(r.Table)).ToList();
        files.Add(AblationTableWriter.WriteMarkdown(Path.Combine(Options.OutputFolder, AblationTableWriter.MarkdownFileName), Options, plan, tables, rows, results));
        files.Add(AblationTableWriter.WriteJson(Path.Combine(Options.OutputFolder, AblationTableWriter.JsonFileName), Options, plan, tables, rows, results));
        files.Add(AblationPlot.Write(Path.Combine(Options.OutputFolder, AblationPlot.FileName), tables, rows, results));
        return new AblationRunResult(true, $"All {plan.Cells.Count} cells finished.", results, files);
    }

    private (AblationCellResult? Result, string? Stopped) TrainCell(AblationPlannedCell planned, AblationPlan plan, CancellationToken cancellation)
    {
        var cell = planned.Cell;
        string dir = Options.CellFolder(cell.Id);
        if (planned.State == AblationCellState.Redo && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        string configText = planned.Configuration.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteAllText(Path.Combine(dir, AblationCellResult.ConfigurationFileName), configText);

        var recipe = cell.Apply(Options.BaseRecipe);
        var modelOptions = recipe.ModelOptions(plan.Train.Categories.Count);
        torch.manual_seed(Options.Seed);   // the same initialisation in every cell (heads included; the backbone is ImageNet's)
        using var model = new RetinaNet(modelOptions);
        recipe.BackboneWeights.LoadInto(model);
        using var loader = new DetectionDataLoader(plan.Train, recipe.BatchSize, shuffle: true, seed: Options.Seed, augmentation: recipe.Augmentation,
            dropLast: plan.Train.Images.Count >= recipe.BatchSize);
        var trainer = new Trainer(new RetinaNetTrainable(model), new DataLoaderTrainingData(loader), Options.TrainingOptions(plan.Iterations), dir, configText)
        {
            Progress = Progress, Message = Message,
        };
        bool resume = File.Exists(trainer.CheckpointPath);
        var training = trainer.Run(resume, cancellation);
        switch (training.Status)
        {
            case TrainingStatus.Interrupted:
                return (null, $"Interrupted in cell {cell.Id} at iteration {training.Iteration} of {training.TotalIterations} (checkpoint saved); run the same command again to continue.");
            case TrainingStatus.NativeFailure:
                return (null, $"Cell {cell.Id}: {training.Message} Run the same command again to continue.");
        }

        Evaluating?.Invoke(cell);
        var sw = Stopwatch.StartNew();
        var (evaluation, _) = DetectionValidation.Evaluate(model, plan.Val, batchSize: 8);
        var result = new AblationCellResult(cell.Id, training.Status == TrainingStatus.Diverged ? AblationCellStatus.Diverged : AblationCellStatus.Completed,
            training.Iteration, evaluation.Stats, training.Log.SkippedSteps, AblationCellResult.FinalLossOf(training.Log),
            training.Elapsed.TotalSeconds, sw.Elapsed.TotalSeconds, planned.Configuration, training.Log);
        result.Write(dir);
        // The result is the record; the training checkpoint (weights + optimiser state, ~100+ MB) is not needed any more.
        if (File.Exists(trainer.CheckpointPath)) File.Delete(trainer.CheckpointPath);
        return (result, null);
    }

    private double MeasureStep(DetectionDataset train)
    {
        Message?.Invoke("Measuring the speed of a training step on this machine...");
        var recipe = PaperTable1.Baseline.Apply(Options.BaseRecipe);
        return StepTiming.SecondsPerStep(recipe.ModelOptions(train.Categories.Count), train, recipe.BatchSize, Options.Seed);
    }

    private (AblationCellResult? Result, JsonObject? Configuration) ReadStored(string cellId)
    {
        string dir = Options.CellFolder(cellId);
        string resultPath = Path.Combine(dir, AblationCellResult.FileName), configPath = Path.Combine(dir, AblationCellResult.ConfigurationFileName);
        if (File.Exists(resultPath))
        {
            var r = AblationCellResult.Read(resultPath);
            return (r, r.Configuration);
        }
        if (!File.Exists(configPath)) return (null, null);
        try
        {
            return (null, JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new DataFormatException(configPath, "the file", "(root)", "is not a JSON object"));
        }
        catch (JsonException e) { throw new DataFormatException(configPath, "the file", "(root)", $"is not valid JSON ({e.Message})"); }
    }

    /// <summary>The iterations of stored cells whose data is the same as this run's (so a resumed run keeps its length), or null.</summary>
    private long? StoredIterations(IEnumerable<JsonObject?> configurations, IReadOnlyList<AblationCell> cells, int numClasses)
    {
        var data = Options.Configuration(cells[0], 1, numClasses)["data"];
        return configurations.Where(c => c != null && JsonNode.DeepEquals(c["data"], data))
            .Select(c => c!["training"]?["Iterations"]?.GetValue<long>()).FirstOrDefault(i => i is > 0);
    }

    private static string Leaf(JsonNode node, string path)
    {
        JsonNode? n = node;
        foreach (var part in path.Split('.')) n = n is JsonObject o ? o[part] : null;
        return n?.ToJsonString() ?? "(absent)";
    }
}
