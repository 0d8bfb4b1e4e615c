// `retina plot-loss` and the log.csv reader under it: the CSV a run writes reads back to the same rows (skipped steps,
// NaN losses and loss terms included); a broken field is named by file, line and column; the command draws two runs.
using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.IO;
using RetinaSharp.Tests.Training;
using RetinaSharp.Tests.Visualization;
using RetinaSharp.Training;

namespace RetinaSharp.Tests.Cli;

public class PlotLossCommandTests
{
    [Fact]
    public void Log_csv_reads_back_to_the_rows_that_were_written()
    {
        string dir = TempDir.Create();
        var log = LossCurvePlotTests.SampleLog();
        log.Steps.Add(new TrainingLogRow(601, 6, 1e-3, double.NaN, new Dictionary<string, double>(), double.NaN, 9.5, 601.5, true));
        log.WriteCsv(dir);
        var back = TrainingLog.ReadCsv(Path.Combine(dir, "log.csv"));
        Assert.Equal(log.Steps.Count, back.Steps.Count);
        Assert.Empty(back.Validations);
        for (int i = 0; i < log.Steps.Count; i++)
        {
            var (a, b) = (log.Steps[i], back.Steps[i]);
            Assert.Equal((a.Iteration, a.Epoch, a.LearningRate, a.Loss, a.GradientNorm, a.ImagesPerSecond, a.ElapsedSeconds, a.Skipped),
                (b.Iteration, b.Epoch, b.LearningRate, b.Loss, b.GradientNorm, b.ImagesPerSecond, b.ElapsedSeconds, b.Skipped));
            Assert.Equal(a.Terms.OrderBy(t => t.Key), b.Terms.OrderBy(t => t.Key));
        }
        Assert.True(back.Steps[^1].Skipped);
        Assert.True(double.IsNaN(back.Steps[^1].Loss));
        Assert.Equal(1, back.SkippedSteps);
    }

    [Fact]
    public void A_field_that_is_not_a_number_is_named_by_file_line_and_column()
    {
        string dir = TempDir.Create();
        LossCurvePlotTests.SampleLog().WriteCsv(dir);
        string csv = Path.Combine(dir, "log.csv");
        var lines = File.ReadAllLines(csv);
        var fields = lines[3].Split(',');
        fields[3] = "abc";
        lines[3] = string.Join(',', fields);
        File.WriteAllLines(csv, lines);
        var e = Assert.Throws<DataFormatException>(() => TrainingLog.ReadCsv(csv));
        Assert.Contains(csv, e.Message);
        Assert.Contains("line 4", e.Message);
        Assert.Contains(TrainingLog.StepLossColumn, e.Message);
        Assert.Contains("'abc' is not a number", e.Message);

        File.WriteAllText(csv, "iteration,epoch\n1,0\n");
        Assert.Contains("missing column", Assert.Throws<DataFormatException>(() => TrainingLog.ReadCsv(csv)).Message);
    }

    [Fact]
    public void Plot_loss_draws_two_runs_into_one_png()
    {
        string dir = TempDir.Create();
        string a = Path.Combine(dir, "imagenet", "train"), b = Path.Combine(dir, "scratch");
        Directory.CreateDirectory(a);
        Directory.CreateDirectory(b);
        var log = LossCurvePlotTests.SampleLog();
        log.WriteCsv(a);
        new TrainingLog { Steps = [.. log.Steps.Select(r => r with { Loss = r.Loss * 1.5 })] }.WriteCsv(b);
        string png = Path.Combine(dir, "out", "loss.png");
        var output = new StringWriter();
        int code = CliApp.Invoke(new RootCommand { PlotLossCommand.Create() }, ["plot-loss", "--out", png, Path.Combine(dir, "imagenet"), "from scratch=" + b], output, new StringWriter());
        Assert.Equal(CliApp.Ok, code);
        Assert.Contains("imagenet: 120 logged steps", output.ToString());
        Assert.Contains("from scratch: 120 logged steps", output.ToString());
        Assert.Equal((900, 500), ImageIO.ReadSize(png));

        var error = new StringWriter();
        int missing = CliApp.Invoke(new RootCommand { PlotLossCommand.Create() }, ["plot-loss", "--out", png, Path.Combine(dir, "nothing")], new StringWriter(), error);
        Assert.Equal(CliApp.BadInput, missing);
        Assert.Contains(Path.Combine(dir, "nothing", "log.csv"), error.ToString());

        // A log with its header only is refused by name; "=PATH" is PATH without a label.
        string empty = Path.Combine(dir, "empty");
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, "log.csv"), "iteration,epoch,lr,loss_step,grad_norm,images_per_s,elapsed_s,skipped\n");
        error = new StringWriter();
        Assert.Equal(CliApp.BadInput, CliApp.Invoke(new RootCommand { PlotLossCommand.Create() }, ["plot-loss", "--out", png, "=" + empty], new StringWriter(), error));
        Assert.Contains($"{Path.Combine(empty, "log.csv")}: no logged steps", error.ToString());
    }
}
