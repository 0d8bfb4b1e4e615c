using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Tests.Training;
using RetinaSharp.Training;

namespace RetinaSharp.Tests.Cli;

/// <summary>What a new user saw (issue 13) and what they see now.</summary>
public class NewUserWordingTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test") { TrainCommand.Create(), EvalCommand.Create(), DetectCommand.Create() };
        CliApp.UniformHelp(root);
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Invoke(root, args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void A_mistyped_number_says_what_to_type_instead_of_the_dotnet_type()
    {
        var (code, _, err) = Run("train", "--data", "x.json", "--out", "o", "--iterations", "abc");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("error: Cannot parse argument 'abc' for option '--iterations': expected a whole number.", err);
        Assert.DoesNotContain("System.", err);
        Assert.Equal("Cannot parse argument 'x' for option '--lr': expected a number (for example 0.5 or 1e-4).",
            CliApp.FriendlyParseError("Cannot parse argument 'x' for option '--lr' as expected type 'System.Nullable`1[System.Double]'."));
    }

    [Fact]
    public void Eval_without_options_names_both_forms()
    {
        var (code, _, err) = Run("eval");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--gt <instances.json> --dt <results.json>", err);
        Assert.Contains("--data <dataset> --weights <model.rsnet>", err);
    }

    [Fact]
    public void A_device_that_is_not_there_is_bad_input_before_any_output_in_every_command()
    {
        string dir = TempDir.Create();
        foreach (var args in new[]
                 {
                     new[] { "detect", "--weights", "m.rsnet", "x.png", "--out", Path.Combine(dir, "d"), "--device", "cuda:1" },
                     new[] { "train", "--data", "x.json", "--out", Path.Combine(dir, "t"), "--iterations", "1", "--device", "cuda" },
                     new[] { "eval", "--data", "x.json", "--weights", "m.rsnet", "--out", Path.Combine(dir, "e"), "--device", "cuda" },
                 })
        {
            var (code, _, err) = Run(args);
            Assert.Equal(CliApp.BadInput, code);
            Assert.Contains("libtorch-cuda-12.8-linux-x64", err);
        }
        Assert.Contains("expected cpu, cuda or cuda:N", Run("detect", "--weights", "m", "x.png", "--out", Path.Combine(dir, "d"), "--device", "gpu").Err);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    [Fact]
    public void Training_into_a_folder_with_a_checkpoint_is_refused_before_the_banner()
    {
        string dir = TempDir.Create();
        File.WriteAllText(Path.Combine(dir, TrainingCheckpoint.FileName), "x");
        var e = Assert.Throws<ArgumentException>(() => TrainCommand.RequireCheckpointForResume(dir, resume: false));
        Assert.Equal($"--out '{dir}' already holds a training checkpoint (checkpoint.rstrain); continue it with --resume or choose another --out.", e.Message);
        TrainCommand.RequireCheckpointForResume(dir, resume: true);   // with --resume it is what is wanted
    }

    [Fact]
    public void The_finished_line_names_the_model_first_and_what_else_is_kept()
    {
        string dir = TempDir.Create();
        string model = Path.Combine(dir, "model.rsnet"), ckpt = Path.Combine(dir, "checkpoint.rstrain");
        File.WriteAllBytes(model, new byte[2_000_000]);
        File.WriteAllBytes(ckpt, new byte[6_000_000]);
        Assert.Equal($"Finished 30 iterations. Model for retina eval/detect --weights: {model} (2 MB); also kept: {ckpt} (6 MB, weights + optimiser state, " +
                     "for --resume or a longer run: delete it, or train with --model-only, when you need neither).",
            TrainCommand.FinishedMessage(30, model, ckpt));
        File.Delete(ckpt);
        Assert.Equal($"Finished 1 iteration. Model for retina eval/detect --weights: {model} (2 MB).", TrainCommand.FinishedMessage(1, model, ckpt));
    }
}
