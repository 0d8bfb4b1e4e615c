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

    private static (int Code, string Output, string Error) Cli(Command command, params string[] args)
    {
        var root = new RootCommand { command };
        var output = new StringWriter();
        var err = new StringWriter();
        int code = CliApp.Invoke(root, args, output, err);
        return (code, output.ToString(), err.ToString());
    }

    [Fact]
    public void An_out_folder_below_a_file_is_one_line_naming_out_in_every_command()
    {
        string dir = TempDir.Create();
        string file = Path.Combine(dir, "afile");
        File.WriteAllText(file, "x");
        string bad = Path.Combine(file, "sub");
        string expected = $"error: --out '{bad}': cannot write there ('{file}' is a file, not a folder); give a writable folder.";
        string data = CategoryMatchTests.CocoSet(Path.Combine(dir, "d"), "train", new RetinaSharp.Data.CocoCategory(1, "a"));
        string image = Path.Combine(dir, "d", "train1.png");
        var cases = new (Command Command, string[] Args)[]
        {
            (TrainCommand.Create(), ["train", "--data", data, "--out", bad, "--iterations", "1"]),
            (DetectCommand.Create(), ["detect", "--weights", Path.Combine(dir, "none.rsnet"), image, "--out", bad]),
            (EvalCommand.Create(), ["eval", "--gt", data, "--dt", Path.Combine(dir, "none.json"), "--out", bad]),
            (DataCommand.Create(), ["data", "fashion-scenes", "--out", bad]),
        };
        foreach (var (command, args) in cases)
        {
            var (code, output, err) = Cli(command, args);
            Assert.Equal(CliApp.BadInput, code);
            Assert.Equal(expected, err.Trim());
            Assert.DoesNotContain("Training", output);
        }
        var (demoCode, _, demoErr) = Cli(DemoCommand.Create(), ["demo", "--quick", "--out", bad]);
        Assert.Equal(CliApp.BadInput, demoCode);
        Assert.Equal(expected, demoErr.Trim());

        if (Directory.Exists("/proc/self"))
        {
            var (code, _, err) = Cli(TrainCommand.Create(), ["train", "--data", data, "--out", "/proc/retina-test-out", "--iterations", "1"]);
            Assert.Equal(CliApp.BadInput, code);
            Assert.StartsWith("error: --out '/proc/retina-test-out': cannot write there", err.Trim());
        }
    }

    [Fact]
    public void Train_bad_data_leaves_no_empty_run_folder_and_no_warmup_notice()
    {
        string run = Path.Combine(TempDir.Create(), "run");
        var (code, output, err) = Cli(TrainCommand.Create(), ["train", "--data", "/nonexistent/instances.json", "--out", run, "--iterations", "1"]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("/nonexistent/instances.json", err);
        Assert.False(Directory.Exists(run));
        Assert.DoesNotContain("Warm-up", output);

        (code, output, _) = Cli(TrainCommand.Create(), ["train", "--data", "/nonexistent/instances.json", "--out", run]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.DoesNotContain("No --iterations", output);
    }

    [Theory]
    [InlineData("--draw-threshold", "NaN", "error: --draw-threshold NaN: must be a score in [0, 1].")]
    [InlineData("--score-threshold", "2", "error: --score-threshold 2: must be a score in [0, 1].")]
    [InlineData("--score-threshold", "-1", "error: --score-threshold -1: must be a score in [0, 1].")]
    [InlineData("--max-detections", "0", "error: --max-detections 0: must be at least 1.")]
    public void Detect_checks_its_options_first_and_names_them(string option, string value, string expected)
    {
        string dir = TempDir.Create();
        string outDir = Path.Combine(dir, "o");
        var (code, _, err) = Cli(DetectCommand.Create(), ["detect", "--weights", Path.Combine(dir, "none.rsnet"), Path.Combine(dir, "none.png"), "--out", outDir, option, value]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Equal(expected, err.Trim());
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Eval_checks_the_score_threshold_before_creating_out()
    {
        string dir = TempDir.Create();
        string outDir = Path.Combine(dir, "ex");
        var (code, _, err) = Cli(EvalCommand.Create(), ["eval", "--data", Path.Combine(dir, "d.json"), "--weights", Path.Combine(dir, "m.rsnet"), "--out", outDir, "--score-threshold", "5"]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Equal("error: --score-threshold 5: must be a score in [0, 1).", err.Trim());
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Counts_use_singular_and_plural()
    {
        Assert.Equal("1 iteration", Plural.Of(1, "iteration"));
        Assert.Equal("0 images", Plural.Of(0, "image"));
        Assert.Equal("1 category", Plural.Of(1, "category"));
        Assert.Equal("10 categories", Plural.Of(10, "category"));
        Assert.Equal("1 class", Plural.Of(1, "class"));
        Assert.Equal("3 classes", Plural.Of(3, "class"));
        Assert.Equal("2 unreadable images", Plural.Of(2, "unreadable image"));
    }
}
