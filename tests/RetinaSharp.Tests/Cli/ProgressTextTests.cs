using RetinaSharp.Cli.Commands;
using RetinaSharp.Training;

namespace RetinaSharp.Tests.Cli;

/// <summary>The console progress labels its loss as the running mean; log.csv names its per-step columns.</summary>
public class ProgressTextTests
{
    [Fact]
    public void Progress_line_says_the_loss_is_a_mean_of_recent_steps()
    {
        var p = new TrainingProgress(40, 100, 1, 0.01, 1.25, new Dictionary<string, double> { ["classification"] = 1.0, ["box_regression"] = 0.25 }, 12.5, TimeSpan.FromSeconds(75));
        Assert.Equal("it 40/100 ep 1 loss (mean of last 20) 1.250 (cls 1.000 box 0.250) lr 0.01 12.5 img/s eta 00:01:15", TrainCommand.Describe(p));
        // Early in a run the mean covers the steps so far.
        Assert.StartsWith("it 3/100 ep 0 loss (mean of last 3) ", TrainCommand.Describe(p with { Iteration = 3, Epoch = 0 }));
        Assert.Contains("loss_step", TrainCommand.LossLegend("/run"));
    }

    [Fact]
    public void Log_csv_header_marks_the_per_step_columns()
    {
        var log = new TrainingLog();
        log.Steps.Add(new TrainingLogRow(1, 0, 0.01, 1.5, new Dictionary<string, double> { ["classification"] = 1.0, ["box_regression"] = 0.5 }, 2.0, 3.0, 4.0, false));
        var lines = log.StepsCsv().Split('\n');
        Assert.Equal("iteration,epoch,lr,loss_step,classification_step,box_regression_step,grad_norm,images_per_s,elapsed_s,skipped", lines[0]);
        Assert.Equal("1,0,0.01,1.5,1,0.5,2,3,4,0", lines[1]);
    }
}
