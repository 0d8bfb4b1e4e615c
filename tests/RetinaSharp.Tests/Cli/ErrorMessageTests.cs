using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Training;
using RetinaSharp.Tests.Training;

namespace RetinaSharp.Tests.Cli;

/// <summary>User-facing errors name the CLI option and never carry .NET's "(Parameter 'x')" suffix.</summary>
public class ErrorMessageTests
{
    [Fact]
    public void Library_parameter_names_become_the_typed_options_and_the_suffix_goes()
    {
        // TrainingOptions.ResolveIterations, as the trainer throws it.
        var e = Assert.Throws<ArgumentException>(() => new TrainingOptions { Iterations = 0 }.ResolveIterations(10));
        Assert.Equal("--iterations must be positive; got 0.", CliApp.UserMessage(e));

        e = Assert.Throws<ArgumentException>(() => new TrainingOptions { Iterations = 5, Epochs = 2 }.ResolveIterations(10));
        Assert.Equal("Give exactly one of --iterations and --epochs.", CliApp.UserMessage(e));

        e = Assert.Throws<ArgumentException>(() => new RetinaSharp.Modeling.RetinaNetOptions(3) { MinSize = 0 }.Validate());
        Assert.StartsWith("--min-size = 0: ", CliApp.UserMessage(e));
        Assert.DoesNotContain("(Parameter", CliApp.UserMessage(e));

        // An option already named in the message: only the suffix goes.
        var resume = new ArgumentException("'/x' already holds a training checkpoint; continue it with --resume or choose another output folder.", "resume");
        Assert.Equal("'/x' already holds a training checkpoint; continue it with --resume or choose another output folder.", CliApp.UserMessage(resume));

        // An unknown parameter name: the suffix goes, "Actual value" stays on the line.
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => ArgumentOutOfRangeException.ThrowIfNegativeOrZero(0, "prefetch"));
        string m = CliApp.UserMessage(range);
        Assert.DoesNotContain("(Parameter", m);
        Assert.DoesNotContain("\n", m);
        Assert.EndsWith("Actual value was 0.", m);
    }

    [Theory]
    [InlineData("--iterations", "0", "--iterations 0: must be at least 1.")]
    [InlineData("--log-every", "0", "--log-every 0: must be at least 1.")]
    [InlineData("--lr", "-1", "--lr -1: must be a positive number.")]
    [InlineData("--trainable-layers", "7", "--trainable-layers 7: must be in 0..5.")]
    public void Train_names_the_option_of_an_out_of_range_value_before_reading_data(string option, string value, string expected)
    {
        var root = new RootCommand { TrainCommand.Create() };
        var err = new StringWriter();
        int code = CliApp.Invoke(root, ["train", "--data", "/nonexistent/instances.json", "--out", TempDir.Create(), option, value], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Equal($"error: {expected}", err.ToString().Trim());
    }

    [Fact]
    public void Data_check_out_errors_have_no_parameter_suffix()
    {
        var root = new RootCommand { DataCommand.Create() };
        var err = new StringWriter();
        int code = CliApp.Invoke(root, ["data", "check", "/nonexistent.json", "--out", "x.json"], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--out is only used with --repair", err.ToString());
        Assert.DoesNotContain("(Parameter", err.ToString());
    }
}
