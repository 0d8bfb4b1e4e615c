using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;

// `retina`: the RetinaSharp command line. Each sub-command lives in Commands/<Name>Command.cs.
var root = new RootCommand("RetinaSharp: focal loss and the RetinaNet detector on TorchSharp.");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(DataCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(DetectCommand.Create());
root.Subcommands.Add(ExportCommand.Create());
return CliApp.Invoke(root, args);
