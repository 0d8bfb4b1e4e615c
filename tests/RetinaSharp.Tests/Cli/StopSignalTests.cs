using System.Diagnostics;
using System.Runtime.InteropServices;
using RetinaSharp.Cli;

namespace RetinaSharp.Tests.Cli;

/// <summary>SIGINT and SIGTERM during training stop it like Ctrl-C; exit codes 130 and 143.</summary>
public class StopSignalTests
{
    [Fact]
    public void First_signal_cancels_and_sets_the_conventional_exit_code_a_second_one_is_left_to_the_system()
    {
        var notices = new List<string>();
        using var stop = new StopSignal(notices.Add);
        Assert.Null(stop.ExitCode);
        Assert.True(stop.OnSignal(PosixSignal.SIGTERM));
        Assert.True(stop.Token.IsCancellationRequested);
        Assert.Equal(143, stop.ExitCode);
        Assert.False(stop.OnSignal(PosixSignal.SIGINT)); // the second one ends the process as usual
        Assert.Equal(143, stop.ExitCode);
        Assert.Single(notices);
        Assert.StartsWith("SIGTERM: finishing the current step and saving a checkpoint", notices[0]);

        using var ctrlC = new StopSignal();
        ctrlC.OnSignal(PosixSignal.SIGINT);
        Assert.Equal(130, ctrlC.ExitCode);
    }

    [Fact]
    public void A_real_sigterm_to_this_process_is_caught_while_armed()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var stop = new StopSignal();
        stop.Arm();
        try
        {
            using (var kill = Process.Start("kill", ["-TERM", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                kill.WaitForExit();
            Assert.True(stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(30)));
            Assert.Equal(143, stop.ExitCode);
        }
        finally
        {
            stop.Disarm();
        }
    }
}
