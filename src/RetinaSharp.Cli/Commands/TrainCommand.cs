using System.CommandLine;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina train`.</summary>
public static class TrainCommand
{
    /// <summary>Builds the `train` command.</summary>
    public static Command Create()
    {
        var command = new Command("train", "(not implemented yet)");
        command.SetAction(_ => { Console.Error.WriteLine("retina train: not implemented yet"); return CliApp.Failed; });
        return command;
    }
}
