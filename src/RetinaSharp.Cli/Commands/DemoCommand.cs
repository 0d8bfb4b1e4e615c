using System.CommandLine;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina demo`.</summary>
public static class DemoCommand
{
    /// <summary>Builds the `demo` command.</summary>
    public static Command Create()
    {
        var command = new Command("demo", "(not implemented yet)");
        command.SetAction(_ => { Console.Error.WriteLine("retina demo: not implemented yet"); return CliApp.Failed; });
        return command;
    }
}
