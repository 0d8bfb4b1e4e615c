using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Tests.Training;

namespace RetinaSharp.Tests.Demo;

public class CommandInputTests
{
    private static (int Code, string Error) Invoke(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        var err = new StringWriter();
        int code = CliApp.Invoke(root, args, new StringWriter(), err);
        return (code, err.ToString());
    }

    [Fact]
    public void Demo_rejects_a_size_below_the_smallest_useful_one()
    {
        var (code, err) = Invoke("demo", "--size", "32", "--out", TempDir.Create());
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--size 32", err);
        Assert.Contains("64", err);
    }

    [Theory]
    [InlineData("--train")]
    [InlineData("--val")]
    [InlineData("--iterations")]
    public void Demo_rejects_a_count_of_zero(string option)
    {
        var (code, err) = Invoke("demo", option, "0", "--out", TempDir.Create());
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains(option + " 0", err);
    }

    [Fact]
    public void Demo_rejects_an_output_folder_that_is_a_file()
    {
        string file = Path.Combine(TempDir.Create(), "not-a-folder");
        File.WriteAllText(file, "x");
        var (code, err) = Invoke("demo", "--quick", "--out", file);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("is a file", err);
    }

    [Fact]
    public void Train_rejects_an_unknown_backbone_and_a_missing_dataset()
    {
        var (code, err) = Invoke("train", "--data", "/nonexistent/instances.json", "--out", TempDir.Create(), "--backbone", "vgg16");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("vgg16", err);
        (code, err) = Invoke("train", "--data", "/nonexistent/instances.json", "--out", TempDir.Create(), "--backbone", "resnet18");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("/nonexistent/instances.json", err);
    }
}
