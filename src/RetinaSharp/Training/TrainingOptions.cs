// The trainer's settings with the RetinaNet paper's defaults (section 5 "Optimization": SGD, momentum 0.9,
// weight decay 1e-4, LR 0.01 per 16 images, warm-up, x0.1 at 2/3 and 8/9 of the run).

namespace RetinaSharp.Training;

/// <summary>How the <see cref="Trainer"/> optimises. Give exactly one of <see cref="Iterations"/> and <see cref="Epochs"/>.</summary>
public sealed record TrainingOptions
{
    /// <summary>The length of the run in iterations (minibatches), or null when <see cref="Epochs"/> is given. Paper: 90 000.</summary>
    public long? Iterations { get; init; }
    /// <summary>The length of the run in epochs (passes over the data), or null when <see cref="Iterations"/> is given.</summary>
    public int? Epochs { get; init; }
    /// <summary>SGD (paper) or AdamW.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    /// <summary>The base learning rate, or null for the linear scaling rule 0.01 x batch / 16.</summary>
    public double? BaseLearningRate { get; init; }
    /// <summary>SGD momentum (paper: 0.9).</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>Weight decay (paper: 1e-4); AdamW applies it decoupled.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Linear warm-up length in iterations (paper/detectron2: 500).</summary>
    public long WarmupIterations { get; init; } = 500;
    /// <summary>The warm-up's starting factor (detectron2: 1/1000).</summary>
    public double WarmupFactor { get; init; } = 1e-3;
    /// <summary>Step decay at 2/3 and 8/9 of the run (paper) or cosine.</summary>
    public LearningRateDecay Decay { get; init; } = LearningRateDecay.Step;
    /// <summary>The step decay's milestones as increasing fractions of the run, each in (0, 1), or null for the paper's 2/3
    /// and 8/9. torchvision's v2 recipe: 16/26 and 22/26 (epochs 16 and 22 of 26).</summary>
    public double[]? StepMilestones { get; init; }
    /// <summary>Weight decay of the normalisation layers' weights and biases (BatchNorm, GroupNorm, LayerNorm,
    /// InstanceNorm: torchvision's <c>split_normalization_params</c>), or null for <see cref="WeightDecay"/>.
    /// torchvision's v2 recipe: 0 (<c>--norm-weight-decay 0.0</c>).</summary>
    public double? NormWeightDecay { get; init; }
    /// <summary>Clip the global gradient L2 norm to this value, or null for no clipping.</summary>
    public double? GradientClipNorm { get; init; }
    /// <summary>Write a checkpoint every this many iterations (and always at the end and on interruption).</summary>
    public long CheckpointEvery { get; init; } = 1000;
    /// <summary>Record a row of the CSV log every this many iterations (the first and last are always logged).</summary>
    public long LogEvery { get; init; } = 20;
    /// <summary>Run the validation callback every this many iterations, or null for only at the end.</summary>
    public long? ValidateEvery { get; init; }
    /// <summary>Seed of torch's generator (and, by convention, of the data order).</summary>
    public long Seed { get; init; }
    /// <summary>Stop the run after this many consecutive steps with a non-finite loss or gradient.</summary>
    public int MaxConsecutiveBadSteps { get; init; } = 5;

    /// <summary>Checks every value and returns the run length in iterations for <paramref name="batchesPerEpoch"/>.</summary>
    /// <exception cref="ArgumentException">Both or neither of Iterations/Epochs, or a value out of range; names the option and value.</exception>
    public long ResolveIterations(int batchesPerEpoch)
    {
        if (Iterations is null == Epochs is null)
            throw new ArgumentException("Give exactly one of Iterations and Epochs.", nameof(Iterations));
        if (Iterations is long i && i <= 0) throw new ArgumentException($"Iterations must be positive; got {i}.", nameof(Iterations));
        if (Epochs is int e && e <= 0) throw new ArgumentException($"Epochs must be positive; got {e}.", nameof(Epochs));
        if (batchesPerEpoch <= 0) throw new ArgumentException($"The data has no batches ({batchesPerEpoch} per epoch).", nameof(batchesPerEpoch));
        if (BaseLearningRate is double lr && !(lr > 0 && double.IsFinite(lr))) throw new ArgumentException($"BaseLearningRate must be positive; got {lr}.", nameof(BaseLearningRate));
        if (CheckpointEvery <= 0) throw new ArgumentException($"CheckpointEvery must be positive; got {CheckpointEvery}.", nameof(CheckpointEvery));
        if (LogEvery <= 0) throw new ArgumentException($"LogEvery must be positive; got {LogEvery}.", nameof(LogEvery));
        if (ValidateEvery is long v && v <= 0) throw new ArgumentException($"ValidateEvery must be positive; got {v}.", nameof(ValidateEvery));
        if (GradientClipNorm is double c && !(c > 0)) throw new ArgumentException($"GradientClipNorm must be positive; got {c}.", nameof(GradientClipNorm));
        if (!(WeightDecay >= 0)) throw new ArgumentException($"WeightDecay must be >= 0; got {WeightDecay}.", nameof(WeightDecay));
        if (NormWeightDecay is double nd && !(nd >= 0)) throw new ArgumentException($"NormWeightDecay must be >= 0; got {nd}.", nameof(NormWeightDecay));
        LearningRateSchedule.CheckMilestoneFractions(StepMilestones, nameof(StepMilestones));
        if (MaxConsecutiveBadSteps <= 0) throw new ArgumentException($"MaxConsecutiveBadSteps must be positive; got {MaxConsecutiveBadSteps}.", nameof(MaxConsecutiveBadSteps));
        return Iterations ?? (long)Epochs!.Value * batchesPerEpoch;
    }

    /// <summary>The schedule of a run of <paramref name="totalIterations"/> with batches of <paramref name="batchSize"/> images.</summary>
    public LearningRateSchedule Schedule(long totalIterations, int batchSize) =>
        new(BaseLearningRate ?? LearningRateSchedule.ScaledBaseLearningRate(batchSize), totalIterations,
            WarmupIterations, WarmupFactor, Decay, milestoneFractions: StepMilestones);
}
