import CMPIShim
import CHDF5
import CTurboJPEG
