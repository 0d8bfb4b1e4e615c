using System.CommandLine;
using System.Text.Json;
using RetinaSharp.Analysis;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Geometry;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Tests.Data;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Analysis;

public class AnchorCoverageAnalysisTests
{
    /// <summary>One square image of <paramref name="side"/> pixels, no resize (MinSize = MaxSize = side), given boxes (XYXY).</summary>
    private static AnchorCoverageResult Analyze(int side, AnchorSettings? settings, params float[][] boxes)
    {
        settings ??= AnchorSettings.Default();
        var set = new AnchorBoxSet([side], [side], new int[boxes.Length], [.. boxes.SelectMany(b => b)]);
        return AnchorCoverageAnalysis.Analyze(settings with { MinSize = side, MaxSize = side }, set);
    }

    private static readonly AnchorSettings OneScale = AnchorSettings.Default() with { Sizes = [[32], [64], [128], [256], [512]], AspectRatios = [1.0] };

    [Fact]
    public void A_box_equal_to_an_anchor_has_IoU_1_and_its_positive_anchors_are_counted()
    {
        // 64x64, no resize: P3 stride 8; the size-32 square anchor centred at (16, 16) is exactly [0, 0, 32, 32].
        var r = Analyze(64, null, [0, 0, 32, 32]);
        Assert.Equal(1.0, r.BestIou(0), 12);
        Assert.Equal(0, r.BestLevel(0));
        Assert.Equal(AnchorMatchKind.Positive, r.Kind(0));
        // Hand count of anchors with IoU >= 0.5 (centres on the stride-8 grid):
        //   32x32 at (16,16) 1, shifted 8 in x or y: 24·32 / (2048 - 768) = 0.6 (4 of them); diagonal 576/1472 < 0.5  -> 5
        //   40x40 at (16,16) 1024/1600 = 0.64; shifted 8: 28·32 / 1728 = 0.519 (4); diagonal 784/1840 < 0.5        -> 5
        //   46x22 (size 32, h/w 0.5) at (16,16) 704/1332 = 0.529; shifted 8 in x: 31·22 / 1354 = 0.504 (2); in y 0.426 -> 3
        //   56x28 (size 40, h/w 0.5) at x = 8, 16, 24 all hold the box's width: 896/1696 = 0.528; x = 0/32: 0.434     -> 3
        //   and the same for h/w 2 (22x46, 28x56)                                                                    -> 3 + 3
        //   50x50, 70x36, 36x70 and every P4..P7 anchor stay below 0.5 (1024/2500 = 0.41 at best)                      = 22
        Assert.Equal(22, r.Positives(0));
    }

    [Fact]
    public void A_box_between_two_levels_is_covered_by_the_nearer_one()
    {
        // One square anchor per level (32 on P3, 64 on P4), 128x128, boxes centred on (48, 48), a P3 and P4 grid point.
        var r = Analyze(128, OneScale, [25.5f, 25.5f, 70.5f, 70.5f], [25f, 25f, 71f, 71f]);
        Assert.Equal(1024.0 / 2025, r.BestIou(0), 9);   // side 45 ≈ 32·√2: 32² / 45² = 0.5057 on P3 (64: 2025/4096 = 0.494)
        Assert.Equal(0, r.BestLevel(0));
        Assert.Equal(2116.0 / 4096, r.BestIou(1), 9);   // side 46: 46² / 64² = 0.5166 on P4 (32: 1024/2116 = 0.484)
        Assert.Equal(1, r.BestLevel(1));
        Assert.Equal(1, r.Positives(0));
        Assert.Equal(1, r.Positives(1));
        // With torchvision's three octave scales the side-45 box has the size-50 anchor: 45² / 50² = 0.81.
        Assert.Equal(2025.0 / 2500, Analyze(128, null, [25.5f, 25.5f, 70.5f, 70.5f]).BestIou(0), 9);
    }

    [Fact]
    public void A_one_to_eight_box_gets_no_anchor_and_a_fitted_ratio_set_covers_it()
    {
        // 128x16 box (h/w = 1/8) centred on (128, 128) of a 256x256 image. The widest default anchors are h/w 0.5:
        // 46x22 (size 32): 46·16 / (1012 + 2048 - 736) = 0.317; 56x28 (size 40): 56·16 / (1568 + 2048 - 896) = 896/2720 = 0.329;
        // 70x36 (size 50): 0.325; 90x46 (64): 0.303; squares lower (32: 512/2560 = 0.2). Best 0.329 < bg 0.4: none.
        var r = Analyze(256, null, [64, 120, 192, 136]);
        Assert.Equal(896.0 / 2720, r.BestIou(0), 9);
        Assert.Equal(AnchorMatchKind.None, r.Kind(0));
        Assert.Equal(0, r.Positives(0));
        Assert.Equal(1, r.ByAspectRatio.Single(b => b.Name == "h/w≈1/8").None);
        // Ratios 1/8, 1/4, 1 (as many as before): 1/8 at size 50 is 142x18 (hw round(70.71), hh round(8.84)), holding the
        // box: 2048 / 2556 = 0.801 (size 40: 114x14, 1596/2048 = 0.779).
        var wide = AnchorSettings.Default() with { AspectRatios = [0.125, 0.25, 1.0] };
        var w = Analyze(256, wide, [64, 120, 192, 136]);
        Assert.Equal(AnchorMatchKind.Positive, w.Kind(0));
        Assert.Equal(2048.0 / 2556, w.BestIou(0), 9);
    }

    [Fact]
    public void Best_IoU_and_positive_counts_equal_a_brute_force_IoU_against_every_anchor()
    {
        // Random boxes on three image sizes (resize, float32 box scaling and padding included) against BoxOps.Iou over
        // all anchors of AnchorGenerator: the O(1)-per-shape search must give the same numbers.
        var rng = new Random(5);
        int[] widths = [200, 150, 97], heights = [120, 160, 61];
        int n = 300;
        var of = new int[n];
        var xy = new float[4 * n];
        for (int b = 0; b < n; b++)
        {
            int im = b % 3;
            of[b] = im;
            float w = (float)(2 + rng.NextDouble() * widths[im] * 0.7), h = (float)(2 + rng.NextDouble() * heights[im] * 0.7);
            float x = (float)(rng.NextDouble() * (widths[im] - w)), y = (float)(rng.NextDouble() * (heights[im] - h));
            (xy[4 * b], xy[4 * b + 1], xy[4 * b + 2], xy[4 * b + 3]) = (x, y, x + w, y + h);
        }
        var settings = AnchorSettings.Default() with { MinSize = 96, MaxSize = 160 };
        var result = AnchorCoverageAnalysis.Analyze(settings, new AnchorBoxSet(widths, heights, of, xy));
        var options = new RetinaNetOptions(1) { MinSize = 96, MaxSize = 160 };
        var transform = new DetectionTransform(options);
        var generator = AnchorGenerator.RetinaNetDefault();
        int positivesSeen = 0;
        for (int im = 0; im < 3; im++)
        {
            using var scope = NewDisposeScope();
            var resized = transform.ResizedSize(heights[im], widths[im]);
            var padded = ((resized.H + 31) / 32 * 32, (resized.W + 31) / 32 * 32);
            var anchors = cat(generator.AnchorsPerLevel(padded, RetinaNet.FeatureSizes(padded)), 0);
            var idx = Enumerable.Range(0, n).Where(b => of[b] == im).ToArray();
            var boxes = DetectionTransform.ScaleBoxes(tensor(idx.SelectMany(b => xy.Skip(4 * b).Take(4)).ToArray(), [idx.Length, 4]), (heights[im], widths[im]), resized);
            var iou = BoxOps.Iou(boxes.to(ScalarType.Float64), anchors.to(ScalarType.Float64));
            var best = iou.max(1).values.data<double>().ToArray();
            var pos = iou.ge(0.5).sum(1).data<long>().ToArray();
            for (int k = 0; k < idx.Length; k++)
            {
                Assert.Equal(best[k], result.BestIou(idx[k]), 9);
                Assert.Equal(pos[k], result.Positives(idx[k]));
                positivesSeen += (int)pos[k];
            }
        }
        Assert.True(positivesSeen > 100, $"{positivesSeen}"); // the comparison covers counts, not only zeros
        Assert.True(result.Overall.Positive > 0 && result.Overall.None > 0, "boxes of every kind");
    }

    [Fact]
    public void Summaries_count_every_box_once_per_grouping_and_empty_images()
    {
        var r = Analyze(256, null, [0, 0, 32, 32], [64, 120, 192, 136], [10, 10, 200, 200]);
        Assert.Equal(3, r.Overall.Boxes);
        Assert.Equal(3, r.BySize.Sum(b => b.Boxes));
        Assert.Equal(3, r.ByTrainingSize.Sum(b => b.Boxes));
        Assert.Equal(3, r.ByAspectRatio.Sum(b => b.Boxes));
        // COCO areas: 32² is not < 32², so medium; 128·16 = 2048 medium; 190² large.
        Assert.Equal([0, 2, 1], r.BySize.Select(b => b.Boxes));
        Assert.Equal(r.Overall.Positive + r.Overall.IgnoredOnly + r.Overall.None, r.Overall.Boxes);
        Assert.Equal(3, r.PositivesHistogram().Sum());
        var empties = new AnchorBoxSet([64, 64, 64], [64, 64, 64], [0], [0, 0, 32, 32]);
        var e = AnchorCoverageAnalysis.Analyze(AnchorSettings.Default() with { MinSize = 64, MaxSize = 64 }, empties);
        Assert.Equal(3, e.ImageCount);
        Assert.Equal(2, e.EmptyImageCount);
    }
}
