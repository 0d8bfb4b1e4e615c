using System.CommandLine;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina detect`.</summary>
public static class DetectCommand
{
    /// <summary>Builds the `detect` command.</summary>
    public static Command Create()
    {
        var command = new Command("detect", "(not implemented yet)");
        command.SetAction(_ => { Console.Error.WriteLine("retina detect: not implemented yet"); return CliApp.Failed; });
        return command;
    }
}
