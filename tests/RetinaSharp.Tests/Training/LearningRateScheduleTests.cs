using RetinaSharp.Training;

namespace RetinaSharp.Tests.Training;

public class LearningRateScheduleTests
{
    [Theory]
    [InlineData(0, 0.01 * 0.001)]            // warm-up starts at base / 1000
    [InlineData(250, 0.01 * (0.001 * 0.5 + 0.5))] // halfway: w(1-a)+a with a = 0.5 -> 0.005005
    [InlineData(499, 0.01 * (0.001 * (1 - 499 / 500.0) + 499 / 500.0))]
    [InlineData(500, 0.01)]
    [InlineData(59999, 0.01)]
    [InlineData(60000, 0.001)]                // x0.1 at 2/3 of 90k
    [InlineData(79999, 0.001)]
    [InlineData(80000, 0.0001)]               // x0.1 again at 8/9 of 90k
    [InlineData(89999, 0.0001)]
    public void Paper_schedule_of_90k_iterations(long iteration, double expected)
    {
        var s = new LearningRateSchedule(0.01, 90000);
        Assert.Equal(expected, s.At(iteration), 12);
        Assert.Equal([60000L, 80000L], s.Milestones);
    }

    [Fact]
    public void Linear_scaling_rule_is_0_01_per_16_images()
    {
        Assert.Equal(0.01, LearningRateSchedule.ScaledBaseLearningRate(16), 15);
        Assert.Equal(0.005, LearningRateSchedule.ScaledBaseLearningRate(8), 15);
        Assert.Equal(0.00125, LearningRateSchedule.ScaledBaseLearningRate(2), 15);
        Assert.Throws<ArgumentException>(() => LearningRateSchedule.ScaledBaseLearningRate(0));
    }

    [Theory]
    [InlineData(0, 0.01)]
    [InlineData(250, 0.0085355339059327)]  // 0.01 * (1 + cos(pi/4)) / 2
    [InlineData(500, 0.005)]
    [InlineData(1000, 0.0)]
    public void Cosine_without_warmup(long iteration, double expected)
    {
        var s = new LearningRateSchedule(0.01, 1000, warmupIterations: 0, decay: LearningRateDecay.Cosine);
        Assert.Equal(expected, s.At(iteration), 12);
    }

    [Fact]
    public void Cosine_with_warmup_multiplies_both_factors()
    {
        var s = new LearningRateSchedule(0.1, 100, warmupIterations: 10, warmupFactor: 0.01, decay: LearningRateDecay.Cosine);
        // iteration 5: warm-up 0.01 * 0.5 + 0.5 = 0.505; cosine (1 + cos(pi * 0.05)) / 2 = 0.99384417
        Assert.Equal(0.1 * 0.505 * 0.9938441702975689, s.At(5), 12);
    }

    [Fact]
    public void Milestones_of_an_epoch_schedule_are_fractions_of_its_length()
    {
        var s = new TrainingOptions { Epochs = 9 }.Schedule(new TrainingOptions { Epochs = 9 }.ResolveIterations(10), batchSize: 4);
        Assert.Equal(90, s.TotalIterations);
        Assert.Equal([60L, 80L], s.Milestones);
        Assert.Equal(0.0025, s.BaseLearningRate, 15);
    }

    [Fact]
    public void Bad_values_are_rejected_with_their_name()
    {
        var e = Assert.Throws<ArgumentException>(() => new LearningRateSchedule(-1, 10));
        Assert.Equal("baseLearningRate", e.ParamName);
        Assert.Throws<ArgumentException>(() => new LearningRateSchedule(0.01, 0));
        Assert.Throws<ArgumentException>(() => new LearningRateSchedule(0.01, 10, warmupFactor: 0));
        Assert.Throws<ArgumentException>(() => new TrainingOptions { Iterations = 5, Epochs = 2 }.ResolveIterations(3));
        Assert.Throws<ArgumentException>(() => new TrainingOptions().ResolveIterations(3));
    }
}
