using System.CommandLine;
using System.Text.RegularExpressions;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;

namespace RetinaSharp.Tests.Cli;

/// <summary>--help states every default one way: System.CommandLine's "[default: X]".</summary>
public class HelpTextTests
{
    private static RootCommand Root()
    {
        var root = new RootCommand("test") { DemoCommand.Create(), DataCommand.Create(), TrainCommand.Create(), EvalCommand.Create(), DetectCommand.Create(), AblateCommand.Create() };
        CliApp.UniformHelp(root);
        return root;
    }

    [Fact]
    public void Every_command_writes_placeholders_and_descriptions_alike()
    {
        foreach (var command in All(Root()))
            foreach (var option in command.Options.Where(o => o.Description != null && o.Name != "--help" && o.Name != "--version"))
            {
                string what = $"{command.Name} {option.Name}: '{option.Description}'";
                Assert.False(option.Description!.EndsWith('.'), what);
                if (option.ValueType == typeof(int) || option.ValueType == typeof(int?) || option.ValueType == typeof(long) || option.ValueType == typeof(long?))
                    Assert.Equal("N", option.HelpName);
                if (option.Name == "--weights" || option.Name == "--init") Assert.Equal("model", option.HelpName);
                if (option.Name == "--out" && command.Name != "check") Assert.Equal("dir", option.HelpName);
            }
        var help = new StringWriter();
        CliApp.Invoke(Root(), ["detect", "--help"], help, new StringWriter());
        Assert.Contains("--weights <model> (REQUIRED)", help.ToString());
        Assert.Contains("--device <cpu|cuda[:N]>", help.ToString());
    }

    private static IEnumerable<Command> All(Command c) => c.Subcommands.SelectMany(All).Prepend(c);

    [Fact]
    public void Defaults_are_written_as_default_in_brackets_once()
    {
        foreach (var command in All(Root()))
            foreach (var option in command.Options.Where(o => o.Description != null))
            {
                string what = $"{command.Name} {option.Name}: '{option.Description}'";
                Assert.False(Regex.IsMatch(option.Description!, @"\(default|\bdefault\b(?!:)|\bquick \d", RegexOptions.IgnoreCase), what);
                // An option with a default value gets "[default: X]" from System.CommandLine: not a second one in its description.
                if (option.HasDefaultValue) Assert.DoesNotContain("[default", option.Description!);
            }
    }

    [Fact]
    public void Help_of_train_shows_both_kinds_of_default_alike()
    {
        var output = new StringWriter();
        CliApp.Invoke(Root(), ["train", "--help"], output, new StringWriter());
        string help = output.ToString();
        Assert.Contains("[default: 16]", help);                       // from the option's default value
        Assert.Contains("[default: paper 0.01 x batch / 16; v2 1e-4]", help); // a computed default (per recipe), written the same way
        Assert.DoesNotContain("(default", help);
    }
}
