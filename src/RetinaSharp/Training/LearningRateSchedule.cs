// The learning-rate schedule of the RetinaNet paper (Lin et al. 2017, section 5 "Optimization"): base LR
// 0.01 for a minibatch of 16 images, scaled linearly with the batch size (Goyal et al. 2017), a linear
// warm-up from base/1000, then division by 10 at 2/3 and 8/9 of the schedule (60k and 80k of 90k
// iterations). Matches detectron2's WarmupMultiStepLR / WarmupCosineLR factors (linear warm-up:
// factor = w * (1 - a) + a with a = iteration / warmupIterations).

namespace RetinaSharp.Training;

/// <summary>The shape of the learning-rate decay after warm-up.</summary>
public enum LearningRateDecay
{
    /// <summary>Multiply by <see cref="LearningRateSchedule.Gamma"/> at 2/3 and again at 8/9 of the schedule (the paper).</summary>
    Step,
    /// <summary>Half a cosine from the base rate down to 0 at the end of the schedule.</summary>
    Cosine,
}

/// <summary>
/// The learning rate at each iteration of a run: warm-up times decay, a pure function of the iteration
/// (so a resumed run continues on the same curve without saving any scheduler state).
/// </summary>
public sealed class LearningRateSchedule
{
    /// <summary>The paper's base learning rate for a minibatch of 16 images.</summary>
    public const double PaperBaseLearningRate = 0.01;
    /// <summary>The paper's minibatch size.</summary>
    public const int PaperBatchSize = 16;

    /// <summary>Creates a schedule.</summary>
    /// <param name="baseLearningRate">The learning rate after warm-up and before the first decay (&gt; 0).</param>
    /// <param name="totalIterations">The length of the run in iterations (&gt; 0); the decay points are fractions of it.</param>
    /// <param name="warmupIterations">Length of the linear warm-up in iterations (&gt;= 0; 0 disables it). Paper: 500.</param>
    /// <param name="warmupFactor">The factor at iteration 0, in (0, 1]. Paper/detectron2: 1/1000.</param>
    /// <param name="decay">Step (paper) or cosine.</param>
    /// <param name="gamma">The factor applied at each step milestone, in (0, 1]. Paper: 0.1.</param>
    /// <param name="milestoneFractions">The step milestones as fractions of the run, increasing, each in (0, 1); null = the
    /// paper's 2/3 and 8/9 (torchvision's v2 recipe: 16/26 and 22/26 of its 26 epochs).</param>
    /// <exception cref="ArgumentException">A value is outside the range given above, naming it and its value.</exception>
    public LearningRateSchedule(double baseLearningRate, long totalIterations, long warmupIterations = 500,
        double warmupFactor = 1e-3, LearningRateDecay decay = LearningRateDecay.Step, double gamma = 0.1,
        IReadOnlyList<double>? milestoneFractions = null)
    {
        if (!(baseLearningRate > 0) || double.IsInfinity(baseLearningRate))
            throw new ArgumentException($"The base learning rate must be a positive finite number; got {baseLearningRate}.", nameof(baseLearningRate));
        if (totalIterations <= 0)
            throw new ArgumentException($"The number of iterations must be positive; got {totalIterations}.", nameof(totalIterations));
        if (warmupIterations < 0)
            throw new ArgumentException($"The warm-up length must be >= 0; got {warmupIterations}.", nameof(warmupIterations));
        if (!(warmupFactor > 0 && warmupFactor <= 1))
            throw new ArgumentException($"The warm-up factor must be in (0, 1]; got {warmupFactor}.", nameof(warmupFactor));
        if (!(gamma > 0 && gamma <= 1))
            throw new ArgumentException($"The decay factor gamma must be in (0, 1]; got {gamma}.", nameof(gamma));
        BaseLearningRate = baseLearningRate;
        TotalIterations = totalIterations;
        WarmupIterations = warmupIterations;
        WarmupFactor = warmupFactor;
        Decay = decay;
        Gamma = gamma;
        CheckMilestoneFractions(milestoneFractions, nameof(milestoneFractions));
        Milestones = milestoneFractions is null
            ? [(long)Math.Round(totalIterations * 2.0 / 3.0), (long)Math.Round(totalIterations * 8.0 / 9.0)]
            : [.. milestoneFractions.Select(f => (long)Math.Round(totalIterations * f))];
    }

    /// <summary>The learning rate between warm-up and the first decay.</summary>
    public double BaseLearningRate { get; }
    /// <summary>The length of the run in iterations.</summary>
    public long TotalIterations { get; }
    /// <summary>The length of the linear warm-up.</summary>
    public long WarmupIterations { get; }
    /// <summary>The warm-up factor at iteration 0.</summary>
    public double WarmupFactor { get; }
    /// <summary>The decay after warm-up.</summary>
    public LearningRateDecay Decay { get; }
    /// <summary>The factor of each step decay.</summary>
    public double Gamma { get; }
    /// <summary>The paper's step milestones as fractions of the run: 2/3 and 8/9 (60k and 80k of 90k iterations).</summary>
    public static IReadOnlyList<double> PaperMilestoneFractions { get; } = [2.0 / 3.0, 8.0 / 9.0];

    /// <summary>Checks step milestone fractions: null, or increasing values each in (0, 1).</summary>
    /// <exception cref="ArgumentException">Empty, not increasing, or a value outside (0, 1); names <paramref name="parameterName"/>.</exception>
    public static void CheckMilestoneFractions(IReadOnlyList<double>? fractions, string parameterName)
    {
        if (fractions is null) return;
        if (fractions.Count == 0 || fractions.Any(f => !(f > 0 && f < 1)) || fractions.Zip(fractions.Skip(1)).Any(p => !(p.Second > p.First)))
            throw new ArgumentException($"The step milestones must be increasing fractions of the run, each in (0, 1); got {string.Join(", ", fractions.Select(f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}.", parameterName);
    }

    /// <summary>The iterations (0-based) from which the step decay applies once more: round(T·f) for each milestone
    /// fraction f (the paper: round(2T/3), round(8T/9)).</summary>
    public IReadOnlyList<long> Milestones { get; }

    /// <summary>
    /// The paper's linear scaling rule: 0.01 x batchSize / 16.
    /// </summary>
    /// <param name="batchSize">Images per iteration (&gt; 0).</param>
    /// <exception cref="ArgumentException"><paramref name="batchSize"/> is not positive.</exception>
    public static double ScaledBaseLearningRate(int batchSize)
    {
        if (batchSize <= 0)
            throw new ArgumentException($"The batch size must be positive; got {batchSize}.", nameof(batchSize));
        return PaperBaseLearningRate * batchSize / PaperBatchSize;
    }

    /// <summary>The learning rate used by the step of 0-based <paramref name="iteration"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="iteration"/> is negative.</exception>
    public double At(long iteration)
    {
        if (iteration < 0)
            throw new ArgumentException($"The iteration must be >= 0; got {iteration}.", nameof(iteration));
        double warm = 1.0;
        if (iteration < WarmupIterations)
        {
            double a = (double)iteration / WarmupIterations;
            warm = WarmupFactor * (1 - a) + a;
        }
        double decay;
        if (Decay == LearningRateDecay.Step)
        {
            decay = 1.0;
            foreach (long m in Milestones)
                if (iteration >= m) decay *= Gamma;
        }
        else
        {
            double t = Math.Min(iteration, TotalIterations) / (double)TotalIterations;
            decay = 0.5 * (1 + Math.Cos(Math.PI * t));
        }
        return BaseLearningRate * warm * decay;
    }
}
