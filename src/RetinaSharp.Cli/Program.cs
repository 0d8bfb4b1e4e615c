using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;

// `retina`: the RetinaSharp command line. Each sub-command lives in Commands/<Name>Command.cs.
// Redirected output (a log file, a pipe) is not hard-wrapped at Spectre.Console's 80-column default: one message, one line.
if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 1 << 16;
var root = new RootCommand("RetinaSharp: focal loss and the RetinaNet detector on TorchSharp.");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(DataCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(DetectCommand.Create());
root.Subcommands.Add(ExportCommand.Create());
root.Subcommands.Add(AblateCommand.Create());
root.Subcommands.Add(PlotLossCommand.Create());
CliApp.UniformHelp(root);
return CliApp.Invoke(root, args);
