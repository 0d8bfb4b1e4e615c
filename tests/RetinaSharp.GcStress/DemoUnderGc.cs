using System.CommandLine;
using System.Diagnostics;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;

namespace RetinaSharp.GcStress;

/// <summary>`retina demo` in this process while <see cref="GcHammer"/> forces collections (issue 17's 300-iteration goal).</summary>
internal static class DemoUnderGc
{
    public static int Run(string[] demoArgs)
    {
        var root = new RootCommand("retina demo under forced GCs");
        root.Subcommands.Add(DemoCommand.Create());
        var sw = Stopwatch.StartNew();
        int code;
        long collections;
        using (var hammer = new GcHammer())
        {
            code = CliApp.Invoke(root, ["demo", .. demoArgs]);
            collections = hammer.Collections;
        }
        Console.WriteLine($"gc-stress demo: exit code {code}, {collections} forced GCs, {sw.Elapsed.TotalSeconds:0} s");
        return code;
    }
}
