using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;

namespace RetinaSharp.Tests.Data;

public class FashionScenesCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(DataCommand.Create());
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Invoke(root, args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Fashion_scenes_writes_a_coco_dataset()
    {
        using var dir = new TempDir();
        var (code, output, err) = Run("data", "fashion-scenes", "--out", dir["s"], "--train", "6", "--val", "3", "--size", "64", "--seed", "2");
        Assert.Equal(CliApp.Ok, code);
        Assert.Equal("", err);
        Assert.Contains("wrote 6 training scenes", output);
        Assert.Equal(6, DetectionDataset.Load(dir["s/instances_train.json"]).Images.Count);
        Assert.Equal(3, Directory.GetFiles(dir["s/val"], "*.png").Length);
    }

    [Theory]
    [InlineData("--size", "32", "--size")]
    [InlineData("--train", "0", "--train")]
    [InlineData("--val", "0", "--val")]
    public void Bad_numbers_exit_2_with_a_message_naming_the_option(string option, string value, string expected)
    {
        using var dir = new TempDir();
        var (code, _, err) = Run("data", "fashion-scenes", "--out", dir["s"], option, value);
        Assert.Equal(CliApp.BadInput, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains(expected, err);
        Assert.DoesNotContain("   at ", err); // no stack trace
    }

    [Fact]
    public void An_output_path_that_is_a_file_exits_2_naming_it()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["f"], "x");
        var (code, _, err) = Run("data", "fashion-scenes", "--out", dir["f"], "--train", "2", "--val", "2");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains(dir["f"], err);
        Assert.Contains("is a file", err);
    }
}
