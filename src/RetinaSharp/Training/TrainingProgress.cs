// What the trainer reports after each step, for a progress bar (the CLI renders it with Spectre.Console).

namespace RetinaSharp.Training;

/// <summary>The state of a run after a step.</summary>
/// <param name="Iteration">Completed iterations.</param>
/// <param name="TotalIterations">The run length.</param>
/// <param name="Epoch">0-based epoch of the last step.</param>
/// <param name="LearningRate">The learning rate of the last step.</param>
/// <param name="Loss">The total loss averaged over the last <see cref="TrainingProgress.SmoothingSteps"/> finite steps of this session
/// (fewer right after a start or resume): a running mean, unlike the per-step <c>loss_step</c> column of log.csv.</param>
/// <param name="Terms">Each loss term, averaged the same way.</param>
/// <param name="ImagesPerSecond">Throughput over recent steps.</param>
/// <param name="Eta">Estimated time to the end of the run.</param>
public sealed record TrainingProgress(long Iteration, long TotalIterations, int Epoch, double LearningRate, double Loss,
    IReadOnlyDictionary<string, double> Terms, double ImagesPerSecond, TimeSpan Eta)
{
    /// <summary>How many recent steps <see cref="Loss"/>, <see cref="Terms"/> and <see cref="ImagesPerSecond"/> average
    /// (the <see cref="Trainer"/>'s window, like detectron2's 20-iteration median in its console log).</summary>
    public const int SmoothingSteps = 20;
}

/// <summary>How a run ended.</summary>
public enum TrainingStatus
{
    /// <summary>All iterations were done.</summary>
    Completed,
    /// <summary>Cancelled (Ctrl-C): a checkpoint of the last completed step was written; resume continues from it.</summary>
    Interrupted,
    /// <summary>Too many consecutive non-finite steps; the last checkpoint (finite weights) is kept.</summary>
    Diverged,
    /// <summary>
    /// libtorch failed during a step (an <see cref="System.Runtime.InteropServices.ExternalException"/>): when the weights were
    /// not touched yet, a checkpoint of the last completed step was written and resume continues from it exactly (as after
    /// Ctrl-C); when the failure came while updating them, the last checkpoint on disk is kept.
    /// </summary>
    NativeFailure,
}

/// <summary>The outcome of <see cref="Trainer.Run"/>.</summary>
/// <param name="Status">How the run ended.</param>
/// <param name="Iteration">Completed iterations.</param>
/// <param name="TotalIterations">The run length.</param>
/// <param name="CheckpointPath">The checkpoint file of the run.</param>
/// <param name="Message">A sentence for the user (what happened, how to resume).</param>
/// <param name="Log">The run's log.</param>
/// <param name="Elapsed">Wall time of this session.</param>
public sealed record TrainingResult(TrainingStatus Status, long Iteration, long TotalIterations, string CheckpointPath,
    string Message, TrainingLog Log, TimeSpan Elapsed);
