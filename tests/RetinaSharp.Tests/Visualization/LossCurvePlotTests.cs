using RetinaSharp.Visualization;
using RetinaSharp.Training;

namespace RetinaSharp.Tests.Visualization;

public class LossCurvePlotTests
{
    [Fact]
    public void Log_ticks_label_1_2_5_per_decade_and_mark_the_other_integers_as_minor()
    {
        var (major, minor) = LossCurvePlot.LogTicks(0.08, 3.1);
        Assert.Equal([0.1, 0.2, 0.5, 1, 2], major);
        Assert.Equal([0.08, 0.09, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 3], minor);
    }

    [Fact]
    public void A_narrow_range_gets_every_integer_mantissa_then_halves_labelled()
    {
        Assert.Equal([0.6, 0.7, 0.8, 0.9, 1], LossCurvePlot.LogTicks(0.55, 1.05).Major);
        Assert.Equal([1.5, 2, 2.5], LossCurvePlot.LogTicks(1.4, 2.6).Major);
        // 0.43..1.85 (a short run): 1-2-5 gives only 0.5 and 1, 1-2-3-5 the same; 1-1.5-2-3-5-7 covers the axis.
        Assert.Equal([0.5, 0.7, 1, 1.5], LossCurvePlot.LogTicks(0.43, 1.85).Major);
    }

    [Theory]
    [InlineData(0.9, 1.0)]
    [InlineData(0.31, 0.4)]
    [InlineData(0.0, 0.1)]
    [InlineData(0.05, 0.1)]
    public void The_ap_axis_starts_at_zero_and_ends_at_or_below_one(double best, double top) =>
        Assert.Equal(top, LossCurvePlot.ApAxisTop(best), 9);

    [Fact]
    public void Writes_a_png_of_a_run_with_validation()
    {
        var log = SampleLog();
        string path = Path.Combine(Path.GetTempPath(), $"loss_curve_{Guid.NewGuid():N}.png");
        LossCurvePlot.Write(log, path);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        if (Environment.GetEnvironmentVariable("RETINA_KEEP_PLOTS") is string keep) File.Copy(path, Path.Combine(keep, "loss_curve.png"), true);
        File.Delete(path);

        // Without validation and with one validation at the end (a short run): still a PNG.
        var noVal = new TrainingLog { Steps = log.Steps.Take(8).ToList() };
        Assert.Equal(0x89, LossCurvePlot.RenderPng(noVal)[0]);
        var oneVal = new TrainingLog { Steps = noVal.Steps, Validations = [log.Validations[0]] };
        byte[] one = LossCurvePlot.RenderPng(oneVal);
        if (Environment.GetEnvironmentVariable("RETINA_KEEP_PLOTS") is string keep2)
        {
            File.WriteAllBytes(Path.Combine(keep2, "loss_curve_noval.png"), LossCurvePlot.RenderPng(noVal));
            File.WriteAllBytes(Path.Combine(keep2, "loss_curve_oneval.png"), one);
        }
    }

    internal static TrainingLog SampleLog()
    {
        var log = new TrainingLog();
        var rng = new Random(1);
        for (int i = 1; i <= 600; i += 5)
        {
            double cls = 1.1 * Math.Exp(-i / 150.0) + 0.12 + 0.03 * rng.NextDouble();
            double box = 0.7 * Math.Exp(-i / 250.0) + 0.2 + 0.03 * rng.NextDouble();
            log.Steps.Add(new TrainingLogRow(i, i / 100, 0.01, cls + box, new Dictionary<string, double> { ["classification"] = cls, ["box_regression"] = box }, 1, 10, i, false));
        }
        foreach (var (it, ap) in new[] { (150L, 0.05), (300L, 0.18), (450L, 0.27), (600L, 0.31) })
            log.Validations.Add(new ValidationLogRow(it, new Dictionary<string, double> { ["AP"] = ap, ["AP50"] = ap * 1.5 }));
        return log;
    }
}
