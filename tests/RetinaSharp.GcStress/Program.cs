// GC-stress harness for issue 17: runs one repeatedly executed path (optimiser steps, losses + backward, detection,
// training) while a second thread calls GC.Collect() in a loop. A TorchSharp object that becomes unreachable while
// libtorch still reads it (an implicitly converted Scalar, a temporary tensor outside a dispose scope) is then
// finalised in the middle of the native call: libtorch throws ("Expected false to be true", "Unknown scalar type"),
// computes with a garbage value, or the process crashes. The tests start this program as a child process, so a
// crash is a failed test and not a lost test host; `soak` and `demo` are the long diagnostic runs of docs/gc-stress.md.
//
//   RetinaSharp.GcStress <path> [--steps N | --seconds S] [--no-gc]
//   RetinaSharp.GcStress soak [--seconds S]            every path for S seconds each (default 60)
//   RetinaSharp.GcStress demo -- <retina demo options>  the `retina demo` command in this process, under forced GCs
//
// Exit codes: 0 survived, 3 a managed exception (libtorch error or wrong result), anything else (134, 139) a crash.
using System.Diagnostics;
using System.Globalization;
using RetinaSharp.GcStress;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: RetinaSharp.GcStress <" + string.Join("|", StressPaths.Names) + "> [--steps N | --seconds S] [--no-gc]");
    Console.WriteLine("       RetinaSharp.GcStress soak [--seconds S]");
    Console.WriteLine("       RetinaSharp.GcStress demo -- <retina demo options>");
    return args.Length == 0 ? 2 : 0;
}

string mode = args[0];
if (mode == "demo")
{
    int sep = Array.IndexOf(args, "--");
    var demoArgs = sep < 0 ? args[1..] : args[(sep + 1)..];
    return DemoUnderGc.Run(demoArgs);
}

long? steps = null;
double? seconds = null;
bool gc = true;
for (int i = 1; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--steps": steps = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--no-gc": gc = false; break;
        default: Console.Error.WriteLine($"unknown argument '{args[i]}'"); return 2;
    }
}

if (mode == "soak")
{
    // Each path in its own child process: one that dies does not hide the others.
    double each = seconds ?? 60;
    int worst = 0;
    foreach (var name in StressPaths.Names)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (!Environment.ProcessPath!.EndsWith("RetinaSharp.GcStress", StringComparison.Ordinal))
            psi.ArgumentList.Add(typeof(StressPaths).Assembly.Location);
        foreach (var a in new[] { name, "--seconds", each.ToString(CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        if (p.ExitCode != 0) Console.WriteLine($"gc-stress {name}: FAILED with exit code {p.ExitCode}");
        worst = Math.Max(worst, p.ExitCode);
    }
    return worst;
}

if (!StressPaths.Names.Contains(mode))
{
    Console.Error.WriteLine($"unknown path '{mode}'; one of: {string.Join(", ", StressPaths.Names)}, soak, demo");
    return 2;
}
return StressPaths.Run(mode, steps, seconds ?? (steps is null ? 5 : null), gc);
