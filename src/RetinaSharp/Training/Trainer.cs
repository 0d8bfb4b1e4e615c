// The training loop of the RetinaNet paper's section 5 (SGD, warm-up, step decay), made safe for long
// runs on a laptop: a DisposeScope per step, atomic checkpoints that hold everything needed to continue
// exactly (the same final weights as an uninterrupted run on the CPU), a guard that skips non-finite steps
// before the optimiser touches the weights, and a CSV log and loss-curve PNG. Comparable to detectron2's
// SimpleTrainer + PeriodicCheckpointer + hooks, written for TorchSharp.
using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using RetinaSharp.Visualization;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>Trains an <see cref="ITrainableModel"/> on <see cref="ITrainingData"/> and writes the run into a folder.</summary>
public sealed class Trainer
{
    private static readonly JsonSerializerOptions OptionsJson = new() { WriteIndented = false, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };
    private readonly ITrainableModel _model;
    private readonly ITrainingData _data;
    private long? _trimEvery;
    private bool _updatingWeights;

    /// <summary>Creates a trainer; nothing runs until <see cref="Run"/>.</summary>
    /// <param name="model">The model (its parameters are updated in place).</param>
    /// <param name="data">The batches; their order must be a function of seed and epoch for exact resume.</param>
    /// <param name="options">The optimisation settings.</param>
    /// <param name="outputDirectory">The run folder: checkpoint, log.csv, validation.csv, loss_curve.png.</param>
    /// <param name="configurationJson">The caller's configuration stored in each checkpoint (model options, data paths).</param>
    /// <exception cref="ArgumentException">An option is out of range, or <paramref name="outputDirectory"/> is a file.</exception>
    public Trainer(ITrainableModel model, ITrainingData data, TrainingOptions options, string outputDirectory, string configurationJson = "{}")
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _data = data ?? throw new ArgumentNullException(nameof(data));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        if (File.Exists(outputDirectory))
            throw new ArgumentException($"The output folder '{outputDirectory}' is a file.", nameof(outputDirectory));
        OutputDirectory = outputDirectory;
        ConfigurationJson = configurationJson;
        TotalIterations = options.ResolveIterations(data.BatchesPerEpoch);
        Schedule = options.Schedule(TotalIterations, data.BatchSize);
    }

    /// <summary>The optimisation settings.</summary>
    public TrainingOptions Options { get; }
    /// <summary>The run folder.</summary>
    public string OutputDirectory { get; }
    /// <summary>The caller's configuration JSON stored in checkpoints.</summary>
    public string ConfigurationJson { get; }
    /// <summary>The run length in iterations.</summary>
    public long TotalIterations { get; }
    /// <summary>The learning-rate schedule.</summary>
    public LearningRateSchedule Schedule { get; }
    /// <summary>The checkpoint file of the run.</summary>
    public string CheckpointPath => Path.Combine(OutputDirectory, TrainingCheckpoint.FileName);

    /// <summary>
    /// Give freed native memory back to the operating system (<see cref="NativeHeap.Trim"/>) every this many iterations,
    /// or null for never. A runtime setting, not stored in checkpoints: it changes the resident memory, never the numbers.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value below 1.</exception>
    public long? TrimNativeHeapEvery
    {
        get => _trimEvery;
        set
        {
            if (value is long v && v < 1) throw new ArgumentOutOfRangeException(nameof(value), v, "TrimNativeHeapEvery must be at least 1 (or null for never).");
            _trimEvery = value;
        }
    }

    /// <summary>Called after every step (on the training thread).</summary>
    public Action<TrainingProgress>? Progress { get; set; }
    /// <summary>Called with notices for the user (skipped steps, checkpoints written, resume point).</summary>
    public Action<string>? Message { get; set; }
    /// <summary>
    /// Validation: given the completed iteration, returns metrics (for example COCO "AP"); the model is in eval
    /// mode during the call. Run every <see cref="TrainingOptions.ValidateEvery"/> iterations and at the end.
    /// </summary>
    public Func<long, IReadOnlyDictionary<string, double>>? Validate { get; set; }

    /// <summary>The options serialised as stored in checkpoints (enums by name).</summary>
    public string OptionsJsonText => JsonSerializer.Serialize(Options, OptionsJson);

    /// <summary>Runs (or, with <paramref name="resume"/>, continues) the training to the end or until cancelled.</summary>
    /// <param name="resume">Continue from the checkpoint in the output folder (start fresh when there is none).</param>
    /// <param name="cancellation">Cancel (Ctrl-C) to stop after the current step with a checkpoint.</param>
    /// <remarks>A libtorch failure during a step (<see cref="System.Runtime.InteropServices.ExternalException"/>) does not
    /// escape: the run ends with <see cref="TrainingStatus.NativeFailure"/>, a checkpoint of the last completed step and a
    /// message naming the error (see <see cref="TrainingStatus.NativeFailure"/>).</remarks>
    /// <exception cref="ArgumentException">Without <paramref name="resume"/>, the folder already holds a checkpoint; with it, the checkpoint was made with other options or another model.</exception>
    /// <exception cref="IO.DataFormatException">The checkpoint is corrupt.</exception>
    public TrainingResult Run(bool resume = false, CancellationToken cancellation = default)
    {
        var wall = Stopwatch.StartNew();
        Directory.CreateDirectory(OutputDirectory);
        var module = _model.Module;
        var optimizer = TrainingOptimizer.Create(Options.Optimizer, module.named_parameters().Select(p => (p.name, (Tensor)p.parameter)),
            Options.WeightDecay, Options.Momentum, Options.NormWeightDecay is null ? null : TrainingOptimizer.NormParameterNames(module), Options.NormWeightDecay);
        var log = new TrainingLog();
        long iteration = 0;
        long savedIteration = -1;   // the iteration of the checkpoint on disk, -1 when none
        int bad = 0;
        if (File.Exists(CheckpointPath))
        {
            if (!resume)
                throw new ArgumentException($"'{OutputDirectory}' already holds a training checkpoint; continue it with --resume or choose another output folder.", nameof(resume));
            using var state = TrainingCheckpoint.Load(CheckpointPath);
            if (state.OptionsJson != OptionsJsonText)
                throw new ArgumentException($"The checkpoint '{CheckpointPath}' was made with other training options: {DescribeDifferences(state.OptionsJson, OptionsJsonText)}; resume with the checkpoint's options.", nameof(resume));
            LoadModelState(module, state.ModelState, CheckpointPath);
            _model.SetExtraState(state.ExtraStateOrEmpty);
            optimizer.LoadState(state.OptimizerState, state.OptimizerStepCount);
            torch.set_rng_state(state.RngState);
            iteration = state.Iteration;
            savedIteration = iteration;
            bad = state.ConsecutiveBadSteps;
            log = TrainingLog.FromJson(state.LogJson);
            Message?.Invoke($"Resuming from iteration {iteration} of {TotalIterations} ({CheckpointPath}).");
        }
        else
        {
            torch.manual_seed(Options.Seed);
        }

        module.train();
        var recent = new Queue<(double Seconds, int Images, double Loss, IReadOnlyDictionary<string, double> Terms)>();
        var status = TrainingStatus.Completed;
        string message = "";
        int epoch = (int)(iteration / _data.BatchesPerEpoch);
        while (iteration < TotalIterations && status == TrainingStatus.Completed)
        {
            epoch = (int)(iteration / _data.BatchesPerEpoch);
            int start = (int)(iteration % _data.BatchesPerEpoch);
            long before = iteration;
            foreach (var batch in _data.ReadEpoch(epoch, start))
            {
                var sw = Stopwatch.StartNew();
                double lr = Schedule.At(iteration);
                StepOutcome outcome;
                // The generator state before the step: a step that libtorch fails is saved as never having started.
                using var rngBefore = torch.get_rng_state();
                try
                {
                    outcome = Step(optimizer, batch, lr);
                }
                catch (System.Runtime.InteropServices.ExternalException e)
                {
                    status = TrainingStatus.NativeFailure;
                    message = NativeFailureMessage(e, iteration, savedIteration, module, optimizer, bad, log, rngBefore);
                    break;
                }
                finally
                {
                    batch.Dispose();
                }
                iteration++;
                double seconds = sw.Elapsed.TotalSeconds;
                if (outcome.Skipped)
                {
                    bad++;
                    Message?.Invoke($"Iteration {iteration}: {outcome.Reason}; step skipped, weights unchanged. Images: {string.Join(", ", batch.ImageIds)}.");
                }
                else bad = 0;

                recent.Enqueue((seconds, batch.Count, outcome.Loss, outcome.Terms));
                while (recent.Count > TrainingProgress.SmoothingSteps) recent.Dequeue();
                var good = recent.Where(r => double.IsFinite(r.Loss)).ToList();
                double ips = recent.Sum(r => r.Images) / Math.Max(1e-9, recent.Sum(r => r.Seconds));
                double secPerIt = recent.Average(r => r.Seconds);
                var smoothTerms = outcome.Terms.Keys.ToDictionary(k => k, k => good.Count == 0 ? double.NaN : good.Average(r => r.Terms.TryGetValue(k, out var v) ? v : 0));
                var eta = TimeSpan.FromSeconds(secPerIt * (TotalIterations - iteration));
                Progress?.Invoke(new TrainingProgress(iteration, TotalIterations, epoch, lr,
                    good.Count == 0 ? double.NaN : good.Average(r => r.Loss), smoothTerms, ips, eta));

                if (iteration % Options.LogEvery == 0 || iteration == 1 || iteration == TotalIterations || outcome.Skipped)
                    log.Steps.Add(new TrainingLogRow(iteration, epoch, lr, outcome.Loss, outcome.Terms, outcome.GradientNorm, ips, wall.Elapsed.TotalSeconds, outcome.Skipped));

                if (bad >= Options.MaxConsecutiveBadSteps)
                {
                    status = TrainingStatus.Diverged;
                    message = $"Stopped at iteration {iteration}: {bad} steps in a row had a non-finite loss or gradient (last: {outcome.Reason}). " +
                              $"The weights were never updated with them; the last checkpoint is kept. Lower the learning rate or clip gradients, then train again.";
                    break;
                }
                if (Validate != null && Options.ValidateEvery is long ve && iteration % ve == 0 && iteration != TotalIterations)
                    RunValidation(module, log, iteration);
                bool last = iteration == TotalIterations;
                if (cancellation.IsCancellationRequested && !last)
                {
                    SaveCheckpoint(module, optimizer, iteration, bad, log);
                    savedIteration = iteration;
                    status = TrainingStatus.Interrupted;
                    message = $"Interrupted at iteration {iteration} of {TotalIterations}; checkpoint saved to {CheckpointPath}.";
                    break;
                }
                if (last)
                {
                    if (Validate != null) RunValidation(module, log, iteration);
                    SaveCheckpoint(module, optimizer, iteration, bad, log);
                    break;
                }
                if (iteration % Options.CheckpointEvery == 0)
                {
                    SaveCheckpoint(module, optimizer, iteration, bad, log);
                    savedIteration = iteration;
                }
                if (TrimNativeHeapEvery is long trim && iteration % trim == 0)
                    NativeHeap.Trim();
            }
            if (status == TrainingStatus.NativeFailure) break;
            if (iteration == before)
                throw new InvalidOperationException($"The training data yielded no batch for epoch {epoch} from batch {start} (it declares {_data.BatchesPerEpoch} per epoch).");
        }
        if (status == TrainingStatus.Completed)
            message = $"Finished {TotalIterations} iteration{(TotalIterations == 1 ? "" : "s")}; checkpoint {CheckpointPath}.";
        log.WriteCsv(OutputDirectory);
        LossCurvePlot.Write(log, Path.Combine(OutputDirectory, "loss_curve.png"));
        return new TrainingResult(status, iteration, TotalIterations, CheckpointPath, message, log, wall.Elapsed);
    }

    /// <summary>
    /// After libtorch failed during iteration <paramref name="completed"/> + 1: saves a checkpoint of the last completed
    /// step when the weights were not touched yet (the generator rewound to its state before the step, so resume repeats
    /// the step exactly), and says what happened.
    /// </summary>
    private string NativeFailureMessage(System.Runtime.InteropServices.ExternalException e, long completed, long savedIteration,
        nn.Module module, TrainingOptimizer optimizer, int bad, TrainingLog log, Tensor rngBefore)
    {
        int n = e.Message.IndexOf('\n');
        string what = $"libtorch failed during iteration {completed + 1} of {TotalIterations} ({(n < 0 ? e.Message : e.Message[..n]).Trim()})";
        if (!_updatingWeights)
        {
            torch.set_rng_state(rngBefore);
            SaveCheckpoint(module, optimizer, completed, bad, log);
            return $"{what}; the weights were not changed by it and a checkpoint of iteration {completed} was saved to {CheckpointPath}.";
        }
        _updatingWeights = false;
        log.WriteCsv(OutputDirectory);
        return savedIteration >= 0
            ? $"{what} while updating the weights; the checkpoint of iteration {savedIteration} in {CheckpointPath} is kept."
            : $"{what} while updating the weights, before any checkpoint was written; train again.";
    }

    private sealed record StepOutcome(bool Skipped, string Reason, double Loss, IReadOnlyDictionary<string, double> Terms, double GradientNorm);

    private StepOutcome Step(TrainingOptimizer optimizer, TrainingBatch batch, double lr)
    {
        using var scope = NewDisposeScope();
        optimizer.ZeroGrad();
        try
        {
            var terms = _model.ComputeLosses(batch);
            if (terms.Count == 0) throw new InvalidOperationException("The model returned no loss terms.");
            var total = terms[0].Value;
            for (int i = 1; i < terms.Count; i++) total = total.add(terms[i].Value, TorchScalars.One);
            var values = new Dictionary<string, double>();
            foreach (var (name, t) in terms) values[name] = t.detach().item<float>();
            double loss = total.detach().item<float>();
            if (!double.IsFinite(loss))
                return new StepOutcome(true, $"non-finite loss {loss}", loss, values, double.NaN);
            TorchRuntime.Backward(total);
            double norm = optimizer.GradientNorm(Options.GradientClipNorm);
            if (!double.IsFinite(norm))
                return new StepOutcome(true, $"non-finite gradient norm {norm}", loss, values, norm);
            _updatingWeights = true;
            optimizer.Step(lr);
            _updatingWeights = false;
            return new StepOutcome(false, "", loss, values, norm);
        }
        finally
        {
            optimizer.ZeroGrad();
        }
    }

    private void RunValidation(nn.Module module, TrainingLog log, long iteration)
    {
        module.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var metrics = Validate!(iteration);
            log.Validations.Add(new ValidationLogRow(iteration, new Dictionary<string, double>(metrics)));
            Message?.Invoke($"Validation at iteration {iteration}: " + string.Join(", ", metrics.Select(kv => $"{kv.Key} {kv.Value:0.000}")));
        }
        finally
        {
            module.train();
        }
    }

    private void SaveCheckpoint(nn.Module module, TrainingOptimizer optimizer, long iteration, int bad, TrainingLog log)
    {
        using var rng = torch.get_rng_state();
        var state = new TrainingState(iteration, optimizer.StepCount, bad, ConfigurationJson, OptionsJsonText, log.ToJson(),
            rng, module.state_dict(), optimizer.StateTensors(), _model.GetExtraState());
        TrainingCheckpoint.Save(CheckpointPath, state); // live tensors: not disposed here
        log.WriteCsv(OutputDirectory);
    }

    /// <summary>Copies a checkpoint's state_dict into <paramref name="module"/> (every key must match in name and shape).</summary>
    /// <exception cref="ArgumentException">A key is missing or a shape differs: the checkpoint belongs to another model.</exception>
    public static void LoadModelState(nn.Module module, IReadOnlyDictionary<string, Tensor> state, string source)
    {
        using var _ = no_grad();
        var own = module.state_dict();
        foreach (var (name, t) in own)
        {
            if (!state.TryGetValue(name, out var s))
                throw new ArgumentException($"The checkpoint '{source}' has no tensor '{name}': it was made for another model.", nameof(state));
            if (!s.shape.SequenceEqual(t.shape))
                throw new ArgumentException($"The checkpoint '{source}' tensor '{name}' has shape [{string.Join(",", s.shape)}], the model expects [{string.Join(",", t.shape)}].", nameof(state));
            t.copy_(s);
        }
    }

    /// <summary>"Name: checkpoint X, now Y" for each top-level option that differs between two options JSON texts.</summary>
    internal static string DescribeDifferences(string checkpointJson, string currentJson)
    {
        using var a = JsonDocument.Parse(checkpointJson);
        using var b = JsonDocument.Parse(currentJson);
        var before = a.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetRawText());
        var now = b.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetRawText());
        var diffs = before.Keys.Union(now.Keys)
            .Where(k => !before.TryGetValue(k, out var x) || !now.TryGetValue(k, out var y) || x != y)
            .Select(k => $"{k}: checkpoint {before.GetValueOrDefault(k, "(absent)")}, now {now.GetValueOrDefault(k, "(absent)")}")
            .ToList();
        return diffs.Count == 0 ? "(same values, different text)" : string.Join("; ", diffs);
    }
}
