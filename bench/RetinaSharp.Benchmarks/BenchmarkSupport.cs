using System.Diagnostics;
using System.Globalization;

namespace RetinaSharp.Benchmarks;

/// <summary>A benchmark suite: runs ours and the reference in one run, prints a table and a RESULT line.</summary>
public interface IBenchmarkSuite
{
    /// <summary>The suite's command-line name (focal-loss, postprocess, inference, train-step, eval).</summary>
    string Name { get; }
    /// <summary>Runs the suite with the remaining command-line arguments.</summary>
    void Run(string[] args);
}

/// <summary>Timing and memory helpers shared by the suites.</summary>
public static class Measure
{
    /// <summary>Median wall time in seconds of <paramref name="action"/> over <paramref name="repeats"/> runs after <paramref name="warmup"/> runs.</summary>
    public static double MedianSeconds(Action action, int warmup = 2, int repeats = 7)
    {
        for (int i = 0; i < warmup; i++) action();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }

    /// <summary>Current resident set size of this process in bytes (from /proc/self/status VmRSS).</summary>
    public static long CurrentRssBytes() => ReadStatusKb("VmRSS:") * 1024;

    /// <summary>Peak resident set size of this process in bytes (VmHWM), since start or the last <see cref="ResetPeakRss"/>.</summary>
    public static long PeakRssBytes() => ReadStatusKb("VmHWM:") * 1024;

    /// <summary>Resets the kernel's peak-RSS counter (writes 5 to /proc/self/clear_refs); returns false where not allowed.</summary>
    public static bool ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Runs a Python script with Debian's /usr/bin/python3; returns its stdout, or null when python3-torchvision is missing or the script fails (the reason is printed).</summary>
    public static string? RunPythonReference(string scriptPath, params string[] args)
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) { Console.WriteLine("reference skipped: /usr/bin/python3 not found (apt-get install python3-torchvision)"); return null; }
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-B");   // no __pycache__ next to the scripts (also in the build output)
        psi.ArgumentList.Add(scriptPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            Console.WriteLine(stderr.Contains("No module named") ?
                "reference skipped: python3-torchvision is not installed (apt-get install python3-torchvision)" :
                $"reference failed (exit {p.ExitCode}): {stderr.Trim()}");
            return null;
        }
        return stdout;
    }

    private static long ReadStatusKb(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return 0;
    }

    /// <summary>Parses "key=value" tokens of a line into a dictionary of doubles.</summary>
    public static Dictionary<string, double> ParseKeyValues(string line) =>
        line.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(t => t.Split('=', 2)).Where(p => p.Length == 2 && double.TryParse(p[1], NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            .ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture));

    /// <summary>Formats a number with invariant culture and 4 significant digits.</summary>
    public static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
