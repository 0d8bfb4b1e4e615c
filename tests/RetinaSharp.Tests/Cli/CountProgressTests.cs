using RetinaSharp.Cli;

namespace RetinaSharp.Tests.Cli;

public class CountProgressTests
{
    [Fact]
    public void Redirected_output_gets_a_line_every_tenth_and_no_carriage_returns()
    {
        var w = new StringWriter();
        var p = new CountProgress(w, "retina eval", 50, "images");
        Assert.False(p.Interactive); // a StringWriter is not the console
        for (int done = 2; done <= 50; done += 2) p.Report(done);
        p.Finish();
        string text = w.ToString();
        Assert.DoesNotContain("\r", text);
        Assert.Equal(
            ["retina eval: 6/50 images (12%)", "retina eval: 10/50 images (20%)", "retina eval: 16/50 images (32%)", "retina eval: 20/50 images (40%)",
             "retina eval: 26/50 images (52%)", "retina eval: 30/50 images (60%)", "retina eval: 36/50 images (72%)", "retina eval: 40/50 images (80%)",
             "retina eval: 46/50 images (92%)", "retina eval: 50/50 images (100%)"],
            text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void A_terminal_gets_one_line_rewritten_in_place()
    {
        var w = new StringWriter();
        var p = new CountProgress(w, "retina eval", 3, "images", interactive: true);
        p.Report(2);
        p.Report(3);
        p.Finish();
        Assert.Equal("\rretina eval: 2/3 images\rretina eval: 3/3 images" + Environment.NewLine, w.ToString());
    }
}
