using System.CommandLine;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina eval`.</summary>
public static class EvalCommand
{
    /// <summary>Builds the `eval` command.</summary>
    public static Command Create()
    {
        var command = new Command("eval", "(not implemented yet)");
        command.SetAction(_ => { Console.Error.WriteLine("retina eval: not implemented yet"); return CliApp.Failed; });
        return command;
    }
}
