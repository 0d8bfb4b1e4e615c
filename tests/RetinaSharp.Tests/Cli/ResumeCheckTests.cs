using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Tests.Data;
using RetinaSharp.Tests.Training;

namespace RetinaSharp.Tests.Cli;

[Collection(TorchRngCollection.Name)]
public class ResumeCheckTests
{
    [Fact]
    public void Differences_name_the_typed_options_and_split_result_changing_from_display_fields()
    {
        string config = """{"settings":{"Data":"/d/a.json","Backbone":"ResNet50","Flip":true,"Scales":null},"model":{"Backbone":"ResNet50","NumClasses":3}}""";
        string config2 = """{"settings":{"Data":"/d/a.json","Backbone":"ResNet18","Flip":false,"Scales":[640,800]},"model":{"Backbone":"ResNet18","NumClasses":3}}""";
        string options = """{"Iterations":100,"BaseLearningRate":0.01,"LogEvery":20,"Optimizer":"Sgd"}""";
        string options2 = """{"Iterations":100,"BaseLearningRate":0.02,"LogEvery":5,"Optimizer":"AdamW"}""";

        var (blocking, free) = ResumeCheck.Differences(config, config2, options, options2, TrainCommand.ResumeFields);

        Assert.Equal(
            ["--backbone: checkpoint resnet50, now resnet18", "--no-flip: checkpoint not given, now given", "--scales: checkpoint not given, now 640,800",
             "--lr: checkpoint 0.01, now 0.02", "--optimizer: checkpoint sgd, now adamw"],
            blocking);
        Assert.Equal(["--log-every: checkpoint 20, now 5"], free);
    }

    [Fact]
    public void Demo_time_budget_and_drawing_threshold_do_not_block_but_the_scene_count_does()
    {
        string config = """{"settings":{"Quick":false,"TrainImages":2000,"TrainingMinutes":12,"DrawThreshold":0.3},"model":{"MinSize":128}}""";
        string config2 = """{"settings":{"Quick":false,"TrainImages":500,"TrainingMinutes":5,"DrawThreshold":0.3},"model":{"MinSize":128}}""";
        var (blocking, free) = ResumeCheck.Differences(config, config2, "{}", "{}", DemoCommand.ResumeFields);
        Assert.Equal(["--train: checkpoint 2000, now 500"], blocking);
        Assert.Equal(["--minutes: checkpoint 12, now 5"], free);
    }

    [Fact]
    public void Same_configuration_has_no_differences()
    {
        string config = """{"settings":{"Data":"/d/a.json"},"model":{"NumClasses":3}}""";
        var (blocking, free) = ResumeCheck.Differences(config, config, "{}", "{}", TrainCommand.ResumeFields);
        Assert.Empty(blocking);
        Assert.Empty(free);
    }

    [Fact]
    public void Train_resume_accepts_a_new_log_interval_and_refuses_a_new_learning_rate_with_one_line_per_field()
    {
        using var dir = new Data.TempDir();
        string data = TinyDatasets.WriteCoco(dir.Path);
        string run = dir["run"];
        string[] common = ["train", "--data", data, "--out", run, "--backbone", "resnet18", "--min-size", "32", "--max-size", "32",
            "--fpn-channels", "8", "--batch-size", "2", "--iterations", "2", "--trainable-layers", "5"];
        var (code, err) = Invoke([.. common]);
        Assert.True(code == CliApp.Ok, err);
        // model.rsnet keeps the training set's categories (label order), for eval/detect to map by name.
        var names = RetinaSharp.Modeling.RetinaNetCheckpoint.ReadCategories(Path.Combine(run, "model.rsnet"));
        Assert.NotNull(names);
        Assert.Equal(RetinaSharp.Data.DetectionDataset.Load(data).Categories.Categories, names);

        (code, err) = Invoke([.. common, "--resume", "--lr", "0.02", "--log-every", "5", "--seed", "3"]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--lr: checkpoint not given, now 0.02", err);
        Assert.Contains("--seed: checkpoint 0, now 3", err);
        Assert.DoesNotContain("--log-every", err);
        Assert.DoesNotContain("{", err);
        Assert.DoesNotContain("(Parameter", err);

        (code, err) = Invoke([.. common, "--resume", "--log-every", "5"]);
        Assert.True(code == CliApp.Ok, err);
    }

    [Fact]
    public void Resume_without_a_checkpoint_in_out_is_refused_naming_the_folder_and_file()
    {
        using var dir = new Data.TempDir();
        string data = TinyDatasets.WriteCoco(dir.Path);
        string run = dir["typo"];
        var (code, err) = Invoke("train", "--data", data, "--out", run, "--backbone", "resnet18", "--min-size", "32", "--max-size", "32",
            "--fpn-channels", "8", "--batch-size", "2", "--iterations", "2", "--resume");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Equal($"error: --resume: no training checkpoint in '{run}' (expected {Path.Combine(run, "checkpoint.rstrain")}); check --out, or drop --resume to start a new run.", err.Trim());
        Assert.False(File.Exists(Path.Combine(run, "log.csv")));
    }

    [Fact]
    public void A_longer_run_on_resume_is_refused_with_the_reason_and_the_init_alternative()
    {
        var (blocking, _) = ResumeCheck.Differences("{}", "{}", """{"Iterations":20}""", """{"Iterations":24}""", TrainCommand.ResumeFields);
        Assert.Equal(["--iterations: checkpoint 20, now 24"], blocking);
        string hint = ResumeCheck.LengthHint(blocking, "/runs/x/checkpoint.rstrain");
        Assert.Contains("learning-rate schedule", hint);
        Assert.Contains("--init /runs/x/model.rsnet", hint);
        Assert.Equal("", ResumeCheck.LengthHint(["--lr: checkpoint 0.01, now 0.02"], "/runs/x/checkpoint.rstrain"));
    }

    private static (int Code, string Error) Invoke(params string[] args)
    {
        var root = new RootCommand { TrainCommand.Create() };
        var err = new StringWriter();
        int code = CliApp.Invoke(root, args, new StringWriter(), err);
        return (code, err.ToString());
    }
}
