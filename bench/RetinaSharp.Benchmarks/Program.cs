using System.Reflection;
using RetinaSharp.Benchmarks;

// dotnet run --project bench/RetinaSharp.Benchmarks -c Release -- <suite>|all
// Every suite runs ours and its reference in the same run and ends with one line
// "RESULT <suite> time_ratio=<ours/reference> mem_ratio=<ours/reference> <more key=value>".
var suites = Assembly.GetExecutingAssembly().GetTypes()
    .Where(t => typeof(IBenchmarkSuite).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
    .Select(t => (IBenchmarkSuite)Activator.CreateInstance(t)!)
    .OrderBy(s => s.Name)
    .ToDictionary(s => s.Name);

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: dotnet run --project bench/RetinaSharp.Benchmarks -c Release -- <suite>|all [options]");
    Console.WriteLine("suites: " + string.Join(", ", suites.Keys));
    return args.Length == 0 ? 2 : 0;
}
var chosen = args[0] == "all" ? suites.Values.ToList() : new List<IBenchmarkSuite>();
if (args[0] != "all")
{
    if (!suites.TryGetValue(args[0], out var s))
    {
        Console.Error.WriteLine($"unknown suite '{args[0]}'; suites: {string.Join(", ", suites.Keys)}");
        return 2;
    }
    chosen.Add(s);
}
// The process's libtorch configuration (oneDNN decision, NNPACK off) before any suite; the notice names it on CPUs
// that report no cache sizes, where channels-last modes run NCHW.
RetinaSharp.TorchRuntime.Initialize();
foreach (var suite in chosen)
{
    Console.WriteLine($"== {suite.Name} ==");
    suite.Run(args.Skip(1).ToArray());
}
return 0;
