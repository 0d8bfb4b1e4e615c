using System.CommandLine;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina data`.</summary>
public static class DataCommand
{
    /// <summary>Builds the `data` command.</summary>
    public static Command Create()
    {
        var command = new Command("data", "(not implemented yet)");
        command.SetAction(_ => { Console.Error.WriteLine("retina data: not implemented yet"); return CliApp.Failed; });
        return command;
    }
}
